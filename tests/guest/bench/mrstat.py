#!/usr/bin/python3
"""Mirror statistics of one MR, from its restrack driver attributes.

    mrstat.py RKEY [DEV]

Runs `rdma -j -dd res show mr dev DEV`, finds the MR whose rkey is RKEY and
prints one JSON object: {"rkey": ..., "odp_mirror_bytes": N,
"odp_mirror_pages": N} when the kernel shows both attributes, or
{"rkey": ..., "available": false, "why": "..."} when it does not.  Never
prints a number it did not read.
"""
import json
import subprocess
import sys

ATTRS = ("odp_mirror_bytes", "odp_mirror_pages")


def as_int(v):
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v, 16)
        except ValueError:
            return None
    return None


def find_attrs(obj, found):
    """Collect ATTRS anywhere in obj (top level or in a driver sub-object)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            # iproute2 prefixes driver attributes with "drv_"
            name = k[4:] if k.startswith("drv_") else k
            if name in ATTRS and isinstance(v, (int, str)):
                found.setdefault(name, int(v))
            else:
                find_attrs(v, found)
    elif isinstance(obj, list):
        for v in obj:
            find_attrs(v, found)
    return found


def mr_list(dev):
    out = subprocess.run(["rdma", "-j", "-dd", "res", "show", "mr", "dev", dev],
                         capture_output=True, text=True, timeout=60)
    if out.returncode:
        raise RuntimeError("rdma res show mr: " + out.stderr.strip())
    data = json.loads(out.stdout or "[]")
    # Older iproute2 wraps the list in an object.
    if isinstance(data, dict):
        data = [v for vals in data.values() if isinstance(vals, list) for v in vals]
    return data


def mrstat(rkey, dev="rxe0"):
    res = {"rkey": "0x%x" % rkey}
    try:
        mrs = mr_list(dev)
    except Exception as e:  # noqa: BLE001 - reported, never turned into a number
        res.update(available=False, why=str(e))
        return res
    for mr in mrs:
        # rdma prints keys in hexadecimal, with or without 0x
        if "rkey" in mr and as_int(mr["rkey"]) == rkey:
            found = find_attrs(mr, {})
            if all(a in found for a in ATTRS):
                res.update(found)
            else:
                res.update(available=False,
                           why="no odp_mirror_bytes/odp_mirror_pages driver "
                               "attributes on this kernel")
            return res
    res.update(available=False, why="MR not found in rdma res show mr")
    return res


if __name__ == "__main__":
    print(json.dumps(mrstat(int(sys.argv[1], 0),
                            sys.argv[2] if len(sys.argv) > 2 else "rxe0")))
