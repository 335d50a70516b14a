#!/usr/bin/env python3
"""A learning Ethernet switch for QEMU "-netdev socket,connect=" links.

  ethhub.py PORT NODES

Listens on 127.0.0.1:PORT for NODES QEMU guests.  QEMU's stream socket
netdev sends each Ethernet frame as a 4-byte big-endian length and the frame.
A frame to a MAC address seen as the source of an earlier frame goes to that
node only; broadcast, multicast and not yet learnt ones go to every other
node.  TCP gives the segment flow control: a busy guest slows its senders
down instead of losing frames.  Used by tests/host/vm-cluster for three nodes or
more; nothing leaves 127.0.0.1.
"""
import select
import socket
import sys


def main():
    port, nodes = int(sys.argv[1]), int(sys.argv[2])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('127.0.0.1', port))
    ls.listen(nodes)
    conns, bufs, where = [], {}, {}
    while True:
        r, _, _ = select.select([ls] + conns, [], [])
        for c in r:
            if c is ls:
                s, _ = ls.accept()
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conns.append(s)
                bufs[s] = b''
                continue
            data = c.recv(1 << 18)
            if not data:
                conns.remove(c)
                del bufs[c]
                where = {m: s for m, s in where.items() if s is not c}
                continue
            buf = bufs[c] + data
            while len(buf) >= 4:
                n = int.from_bytes(buf[:4], 'big')
                if len(buf) < 4 + n:
                    break
                rec, buf = buf[:4 + n], buf[4 + n:]
                frame = rec[4:]
                if len(frame) < 14:
                    continue
                where[frame[6:12]] = c
                dst = frame[0:6]
                to = None if dst[0] & 1 else where.get(dst)
                for s in ([to] if to else conns):
                    if s is not c:
                        try:
                            s.sendall(rec)
                        except OSError:
                            pass
            bufs[c] = buf


if __name__ == '__main__':
    main()
