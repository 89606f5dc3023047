"""linux.netDevices: host network devices moved into the container's network
namespace, renamed, with their permanent global addresses, and set up.

pyroute2 is imported only here, only for configs that ask for this: it costs
~170 ms to import.
"""

import os

from .errors import Error

IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0


def move_all(devices, pid):
    from pyroute2 import IPRoute, NetNS
    from pyroute2.netlink.exceptions import NetlinkError

    path = f"/proc/{pid}/ns/net"
    nsfd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    ipr = IPRoute()
    ns = NetNS(path)
    try:
        for host_name, spec in devices.items():
            new = (spec or {}).get("name") or host_name
            where = f"linux.netDevices.{host_name}"
            found = ipr.link_lookup(ifname=host_name)
            if not found:
                raise Error(f"{where}: no network device {host_name!r} on the host")
            idx = found[0]
            if "%d" not in new and ns.link_lookup(ifname=new):
                raise Error(f"{where}: a device named {new!r} already exists in the "
                            "container's network namespace")
            link = ipr.get_links(idx)[0]
            mac = link.get_attr("IFLA_ADDRESS")
            # Moving drops the addresses: keep the permanent, global ones.
            addrs = []
            for a in ipr.get_addr(index=idx):
                flags = a.get_attr("IFA_FLAGS") or a["flags"]
                if a["scope"] == RT_SCOPE_UNIVERSE and flags & IFA_F_PERMANENT:
                    addrs.append((a["family"], a.get_attr("IFA_ADDRESS"), a["prefixlen"]))
            try:
                ipr.link("set", index=idx, net_ns_fd=nsfd, ifname=new)
            except NetlinkError as e:
                raise Error(f"{where}: cannot move {host_name!r} into the container: "
                            f"{os.strerror(e.code).lower()}") from None
            moved = [li["index"] for li in ns.get_links()
                     if li.get_attr("IFLA_ADDRESS") == mac and mac]
            if not moved:
                moved = ns.link_lookup(ifname=new)
            if not moved:
                raise Error(f"{where}: {host_name!r} was moved but is not found in the container")
            for family, address, prefixlen in addrs:
                ns.addr("add", index=moved[0], address=address, prefixlen=prefixlen, family=family)
            ns.link("set", index=moved[0], state="up")
    except NetlinkError as e:
        raise Error(f"linux.netDevices: {os.strerror(e.code).lower()}") from None
    finally:
        ns.close()
        ipr.close()
        os.close(nsfd)
