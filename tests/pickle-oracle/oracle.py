#!/usr/bin/env python3
"""Ground truth for Warden's pickle scanner, without executing anything.

Runs CPython's own unpicklers (the C `_pickle.Unpickler` that `pickle.load` uses, and the pure-Python
`pickle._Unpickler`) on each input. `find_class` is overridden: it calls CPython's own `find_class` (so the
`_compat_pickle` mapping under protocol < 3 and the dotted-name rules are CPython's), but with `__import__`
swapped for a hook that imports nothing and hands back an inert stub as the module; attribute look-ups on
stubs return stubs, calls return stubs, `persistent_load` returns a stub. Nothing is imported or called.
The first module and attribute path the stub saw is the global CPython resolves.

Modes:
  oracle.py FILE...      one JSON line per file
  oracle.py --serve      length-prefixed batches on stdin/stdout: in  = u32 LE length + bytes (0xFFFFFFFF ends),
                         out = u32 LE length + UTF-8 JSON per input
JSON: {"c": R, "py": R}; R = {"ok": parsed to STOP, "err": message, "globals": [[module, name], ...],
"imports": [module, ...]}.
"""
import builtins
import io
import json
import os
import pickle
import signal
import struct
import sys
import time
import warnings

# Hostile sizes make the C unpickler allocate before reading (a LONG_BINPUT index grows the memo array to
# twice it); an address-space cap fails those fast instead of swapping the machine. glibc's adaptive mmap
# threshold would keep freed big blocks on the heap until the cap is hit for good, so it is pinned first.
if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None and sys.platform.startswith("linux"):
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"})
try:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
except (ImportError, ValueError, OSError):
    pass

import _pickle

warnings.simplefilter("ignore")
_REAL_IMPORT = builtins.__import__
_SLOW_LOG = os.environ.get("WARDEN_ORACLE_SLOW_LOG")
_MISSING = object()


class _StubMeta(type):
    """Every attribute is another stub, every call returns a stub; nothing real is reachable."""

    def __getattribute__(cls, name):
        if name.startswith("_stub_"):
            return type.__getattribute__(cls, name)
        # Real module attributes are identifiers; 'a.b' or '' as one attribute name fails on a real module.
        if not isinstance(name, str) or not name.isidentifier():
            raise AttributeError(name)
        return _stub(type.__getattribute__(cls, "_stub_path") + (name,))

    def __call__(cls, *args, **kwargs):
        return _stub(("<call>",))

    def __setitem__(cls, key, value):
        return None

    # No __getitem__/__iter__: with one, `**stub` (NEWOBJ_EX kwargs) would iterate stub[0], stub[1], ... forever.


def _stub(path):
    return _StubMeta("Stub", (), {"_stub_path": path})


def _is_stub(obj):
    return isinstance(obj, type) and type(obj) is _StubMeta


def _find(base, self, module, name):
    swapped = {}
    imports = self._rec["imports"]

    def hook(mname, globals=None, locals=None, fromlist=(), level=0):
        if not isinstance(mname, str) or level != 0:
            raise ImportError("stub import: unexpected form")
        if mname == "":
            raise ValueError("Empty module name")
        if any(part == "" for part in mname.split(".")) or "\x00" in mname:
            raise ModuleNotFoundError(mname)
        imports.append(mname)
        stub = _stub((mname,))
        if mname not in swapped:
            swapped[mname] = sys.modules.get(mname, _MISSING)
        sys.modules[mname] = stub
        return stub

    builtins.__import__ = hook
    try:
        obj = base.find_class(self, module, name)
    finally:
        builtins.__import__ = _REAL_IMPORT
        for key, old in swapped.items():
            if old is _MISSING:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = old
    if not _is_stub(obj):
        # Never hand a real object to the unpickler.
        raise RuntimeError("oracle: find_class produced a non-stub object")
    path = type.__getattribute__(obj, "_stub_path")
    self._rec["globals"].append([path[0], ".".join(path[1:])])
    return obj


class _CUnpickler(_pickle.Unpickler):
    def find_class(self, module, name):
        return _find(_pickle.Unpickler, self, module, name)

    def persistent_load(self, pid):
        return _stub(("<persistent>",))


class _PyUnpickler(pickle._Unpickler):
    def find_class(self, module, name):
        return _find(pickle._Unpickler, self, module, name)

    def persistent_load(self, pid):
        return _stub(("<persistent>",))


def run(cls, data):
    rec = {"ok": False, "err": "", "globals": [], "imports": []}
    u = cls(io.BytesIO(data))
    u._rec = rec
    try:
        u.load()
        rec["ok"] = True
    except RecursionError as e:  # pragma: no cover - reported, never fatal
        rec["err"] = "RecursionError: " + str(e)[:200]
    except _Timeout:
        raise
    except Exception as e:  # noqa: BLE001 - any failure is "CPython stops here"
        rec["err"] = type(e).__name__ + ": " + str(e)[:200]
    return rec


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout("oracle: case took longer than 5 s")


def judge(data):
    # A per-case time limit, so one pathological input cannot stall a batch.
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, 5.0)
    try:
        return {"c": run(_CUnpickler, data), "py": run(_PyUnpickler, data)}
    finally:
        if hasattr(signal, "setitimer"):
            signal.setitimer(signal.ITIMER_REAL, 0)


def serve():
    inp = sys.stdin.buffer
    out = sys.stdout.buffer
    while True:
        head = inp.read(4)
        if len(head) < 4:
            return
        (n,) = struct.unpack("<I", head)
        if n == 0xFFFFFFFF:
            return
        data = inp.read(n)
        t0 = time.perf_counter()
        try:
            verdict = judge(data)
        except _Timeout as e:
            verdict = {k: {"ok": False, "err": "timeout: " + str(e), "globals": [], "imports": []} for k in ("c", "py")}
        if _SLOW_LOG and time.perf_counter() - t0 > 0.02:
            with open(_SLOW_LOG, "a") as log:
                log.write("%.3f %s\n" % (time.perf_counter() - t0, data[:200].hex()))
        body = json.dumps(verdict, ensure_ascii=True).encode("ascii")
        out.write(struct.pack("<I", len(body)) + body)
        out.flush()


def main(argv):
    if argv[1:] == ["--serve"]:
        serve()
        return 0
    for path in argv[1:]:
        with open(path, "rb") as f:
            print(json.dumps({"file": path, **judge(f.read())}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
