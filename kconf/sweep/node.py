"""The machine a trial runs on: its hostname and IP address, recorded in the trial's folder."""
from __future__ import annotations

import os
import socket

#: Set to the address to record (a cluster backend knows it best), else it is looked up.
NODE_IP_VARIABLE = "KCONF_NODE_IP"

# An address of TEST-NET-1 (RFC 5737): "connecting" a UDP socket to it only asks the routing
# table which local address would be used; no packet is sent.
_PROBE = ("192.0.2.1", 9)


def node_ip() -> str:
    """This machine's IP address: ``$KCONF_NODE_IP``, else the address of the interface that
    routes outwards, else the hostname's address, else ``127.0.0.1`` (a machine with only a
    loopback interface)."""
    given = os.environ.get(NODE_IP_VARIABLE)
    if given:
        return given
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(_PROBE)
            address = probe.getsockname()[0]
        if address and address != "0.0.0.0":
            return address
    except OSError:
        pass
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def node_info() -> dict[str, str]:
    """``{"hostname": ..., "ip": ...}`` of the machine this runs on."""
    return {"hostname": socket.gethostname(), "ip": node_ip()}
