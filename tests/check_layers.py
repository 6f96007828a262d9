#!/usr/bin/env python3
"""check_layers.py - the layering preload -> hooks -> core, checked on the
built objects.

libgreen.so exports libc's names (read, write, pthread_mutex_lock...). A
call to one of them from inside the library reaches libgreen's own hook,
not libc: the core and the hooks must call the real function through the
table of libgreen/real.h instead. The linker cannot see that mistake (the
name resolves), so this test reads the symbol tables:

  1. no object of the core (libgreen_core.a) or of the hooks
     (libgreen_hooks.a) has an undefined reference to a name libgreen.so
     exports that is not libgreen's own (green_*): those are the hooks;
  2. no core object references a symbol defined by the hooks (the core's
     unit tests, linked with the core alone, check this too);
  3. every function that an object of libgreen.so defines with default
     visibility (green.h's API, the exported wrappers) is exported: the
     version script preload/libgreen.map makes every other name local, so
     a name missing there would silently not be hooked.

Usage: check_layers.py CORE.a HOOKS.a LIBGREEN.so
       check_layers.py --self-test    (proves the check can fail)
"""
import os
import subprocess
import sys
import tempfile


def nm(path, *flags):
    out = subprocess.run(["nm", *flags, path], check=True, capture_output=True,
                         text=True).stdout
    return out.splitlines()


def members(archive):
    """{member: (defined set, undefined set)} of a static archive."""
    res = {}
    cur = None
    for line in nm(archive):
        if not line.strip():
            continue
        if line.endswith(":"):
            cur = os.path.basename(line[:-1])
            res[cur] = (set(), set())
            continue
        parts = line.split()
        if cur is None or len(parts) < 2:
            continue
        kind, name = parts[-2], parts[-1]
        if kind == "U":
            res[cur][1].add(name)
        elif kind in "TtDdBbRrWVCi":
            if kind.isupper():
                res[cur][0].add(name)
    return res


def exported_libc_names(so):
    names = set()
    for line in nm(so, "-D", "--defined-only"):
        parts = line.split()
        if len(parts) < 3:
            continue
        kind, name = parts[1], parts[2].split("@")[0]
        if kind in "TWi" and not name.startswith("green_") and \
                name not in ("_init", "_fini"):
            names.add(name)
    return names


def default_visibility_functions(path):
    """Global functions defined with default visibility, per readelf."""
    out = subprocess.run(["readelf", "-sW", path], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        f = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(f) >= 8 and f[3] == "FUNC" and f[4] in ("GLOBAL", "WEAK") \
                and f[5] == "DEFAULT" and f[6] != "UND":
            names.add(f[7].split("@")[0])
    return names


def check(core, hooks, so, objects=()):
    hooked = exported_libc_names(so)
    if len(hooked) < 50:
        return [f"{so}: only {len(hooked)} libc-named exports; not libgreen.so?"]
    core_m = members(core)
    hooks_m = members(hooks)
    hooks_defined = set().union(*(d for d, _ in hooks_m.values())) if hooks_m else set()
    errors = []
    for layer, mem in (("core", core_m), ("hooks", hooks_m)):
        for obj, (_, undef) in sorted(mem.items()):
            for name in sorted(undef & hooked):
                errors.append(f"{layer} {obj} calls {name}(), which libgreen.so "
                              f"exports as a hook: call GREEN_REAL({name}) "
                              f"(libgreen/real.h) or the hook's own function")
    for obj, (_, undef) in sorted(core_m.items()):
        for name in sorted(undef & hooks_defined):
            errors.append(f"core {obj} references {name}, defined in the hooks: "
                          f"the core may not depend on the layer above it")
    exported = {l.split()[2].split("@")[0] for l in nm(so, "-D", "--defined-only")
                if len(l.split()) >= 3}
    for path in [core, hooks, *objects]:
        for name in sorted(default_visibility_functions(path) - exported):
            errors.append(f"{os.path.basename(path)} defines {name} with default "
                          f"visibility but libgreen.so does not export it: add it "
                          f"to preload/libgreen.map (or make it GREEN_HIDDEN)")
    return errors


def self_test():
    """Build a fake core object that calls write() and a fake hooks object;
    the check must report exactly the write() call."""
    with tempfile.TemporaryDirectory() as d:
        def ar(name, src):
            c = os.path.join(d, name + ".c")
            o = os.path.join(d, name + ".o")
            a = os.path.join(d, "lib" + name + ".a")
            open(c, "w").write(src)
            subprocess.run(["cc", "-c", c, "-o", o], check=True)
            subprocess.run(["ar", "rcs", a, o], check=True)
            return a
        core = ar("fakecore", "#include <unistd.h>\n__attribute__((visibility(\"hidden\"))) void green__x(void)"
                  "{ (void)write(2, \"x\", 1); }\nint helper_of_hooks(void);"
                  "__attribute__((visibility(\"hidden\"))) int green__y(void){ return helper_of_hooks(); }\n"
                  "int green_forgotten(void){ return 2; }\n")
        hooks = ar("fakehooks", "__attribute__((visibility(\"hidden\"))) int helper_of_hooks(void){ return 1; }\n")
        so_src = os.path.join(d, "so.c")
        names = [f"f{i}" for i in range(60)]
        open(so_src, "w").write("".join(f"int {n}(void){{return 0;}}\n" for n in names) +
                                "long write(int f, const void *b, unsigned long n)"
                                "{ return (long)f + (long)n + (b != 0); }\n")
        so = os.path.join(d, "libfake.so")
        subprocess.run(["cc", "-shared", "-fPIC", so_src, "-o", so], check=True)
        errs = check(core, hooks, so)
        want_write = [e for e in errs if "calls write()" in e]
        want_dep = [e for e in errs if "helper_of_hooks" in e]
        want_map = [e for e in errs if "green_forgotten" in e]
        if len(want_write) != 1 or len(want_dep) != 1 or len(want_map) != 1 \
                or len(errs) != 3:
            print("self-test FAILED: expected one write(), one hooks "
                  "dependency and one unexported function, got:\n  " + "\n  ".join(errs))
            return 1
        print("self-test ok: a core call to write(), a core reference to a "
              "hooks symbol and a function missing from the map are all reported")
        return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    import glob
    objects = sorted(glob.glob(os.path.realpath(sys.argv[3]) + ".p/*.o"))
    if not objects:
        print(f"no objects next to {sys.argv[3]} (expected {sys.argv[3]}.p/*.o)")
        return 2
    errors = check(*sys.argv[1:], objects=objects)
    for e in errors:
        print(e)
    if errors:
        print(f"check_layers: {len(errors)} layering violation(s)")
        return 1
    core_n = len(members(sys.argv[1]))
    hooks_n = len(members(sys.argv[2]))
    print(f"check_layers: ok ({core_n} core and {hooks_n} hooks objects, "
          f"{len(exported_libc_names(sys.argv[3]))} hooked names)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
