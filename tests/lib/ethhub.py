#!/usr/bin/env python3
"""A learning Ethernet switch for QEMU "-netdev socket,udp=" endpoints.

  ethhub.py HUBPORT NODEPORT...

Listens on 127.0.0.1:HUBPORT.  Each datagram is one Ethernet frame from the
node at 127.0.0.1:NODEPORT.  A frame to a MAC address seen as the source of
an earlier frame goes to that node only; any other frame (broadcast,
multicast, not yet learnt) goes to every other node.  Used by tests/vm-cluster
for three nodes or more; nothing leaves 127.0.0.1.
"""
import socket
import sys


def main():
    hubport = int(sys.argv[1])
    nodes = [('127.0.0.1', int(p)) for p in sys.argv[2:]]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.bind(('127.0.0.1', hubport))
    where = {}
    while True:
        frame, src = s.recvfrom(65536)
        if src not in nodes or len(frame) < 14:
            continue
        where[frame[6:12]] = src
        dst = frame[0:6]
        to = where.get(dst) if not dst[0] & 1 else None
        for node in ([to] if to else nodes):
            if node != src:
                try:
                    s.sendto(frame, node)
                except OSError:
                    pass


if __name__ == '__main__':
    main()
