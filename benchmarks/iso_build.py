"""Benchmarks of the disk builder (not timed tests; run once, record the figures in benchmarks/RESULTS.md).

1. ISO build wall time vs the bare commands. One exported root filesystem of the installer image is prepared; then,
   side by side on the same machine and the same tree:
     bare   - mksquashfs (zstd, same level, all cores) + grub-mkrescue-equivalent xorriso on the host, nothing else;
     module - DiskBuilder.build(<an ISO DiskRequest>, rootfs=<the same exported tree>): the generated script run
              in the builder container through the Docker SDK, or on the host (the ESP, mksquashfs with GRUB's BIOS
              image made beside it, xorriso with the ISO hashed as it is written), the .sha256 file, stamp, rename.
   Goal: module <= 1.15 x bare. Each side runs ``--rounds`` times alternately; the medians are compared.
2. Raw image allocation: allocated bytes of the sparse raw disk vs the bytes of data written into it (squashfs,
   kernel, initrd, GRUB EFI/BIOS images, user data). Goal: allocated <= 1.2 x data.

    .venv/bin/python benchmarks/iso_build.py --image palette-installer-image:v4.9.21-demo [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "collections")]

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import stamps  # noqa: E402
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.build import DiskBuilder  # noqa: E402
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.builder_image import (  # noqa: E402
    ensure_builder_image)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.request import (  # noqa: E402
    DEFAULT_SQUASHFS_LEVEL, DiskRequest)
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.rootfs import export_rootfs  # noqa: E402
from ansible_collections.edgeforge.artifacts.plugins.module_utils.docker_engine import DockerEngine  # noqa: E402


def machine():
    mem = 0
    with open("/proc/meminfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) // 1024 // 1024
    distro = ""
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    return "%d cores, %d GiB, %s, kernel %s, load %.1f at start" % (os.cpu_count(), mem, distro, platform.release(),
                                                                    os.getloadavg()[0])


def _place(arg, mapping):
    """Replace a leading ROOT/STAGE/OUT placeholder of a command argument with its path."""
    head, sep, rest = arg.partition("/")
    return mapping[head] + sep + rest if head in mapping else arg


def bare_iso(rootfs, out_dir, level, engine=None, builder_image=None):
    """What a person would type: mksquashfs + grub-mkrescue (which runs xorriso) for a BIOS+UEFI hybrid ISO.

    With ``engine``/``builder_image`` the same two commands run in one ``docker run`` of the builder image (same CPU
    share conditions as the module's container); otherwise on the host.
    """
    stage = os.path.join(out_dir, "bare-stage")
    os.makedirs(os.path.join(stage, "boot", "grub"), exist_ok=True)
    shutil.copyfile(os.path.join(rootfs, "boot", "vmlinuz"), os.path.join(stage, "boot", "kernel"))
    shutil.copyfile(os.path.join(rootfs, "boot", "initrd"), os.path.join(stage, "boot", "initrd"))
    with open(os.path.join(stage, "boot", "grub", "grub.cfg"), "w", encoding="utf-8") as handle:
        handle.write(DiskRequest("iso", "bare", out_dir).grub_cfg())
    squash = ["mksquashfs", "ROOT", "STAGE/rootfs.squashfs", "-noappend", "-no-progress", "-comp", "zstd", "-b", "1M",
              "-Xcompression-level", str(level), "-processors", str(os.cpu_count())]
    rescue = ["grub-mkrescue", "-o", "OUT/bare.iso", "STAGE", "--", "-volid", "COS_LIVE"]
    iso = os.path.join(out_dir, "bare.iso")
    started = time.monotonic()
    if engine is None:
        mapping = {"ROOT": rootfs, "STAGE": stage, "OUT": out_dir}
        for cmd in (squash, rescue):
            subprocess.run([_place(c, mapping) for c in cmd], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    else:
        mapping = {"ROOT": "/rootfs", "STAGE": "/out/bare-stage", "OUT": "/out"}
        text = " && ".join(" ".join(_place(c, mapping) for c in cmd) + " >/dev/null 2>&1"
                           for cmd in (squash, rescue))
        cid = engine.create_container(builder_image, ["bash", "-c", text],
                                      binds={rootfs: ("/rootfs", "ro"), out_dir: ("/out", "rw")})
        try:
            code = engine.run_container(cid, lambda line: None, timeout=3600)
        finally:
            engine.remove_container(cid)
        if code != 0:
            raise RuntimeError("bare commands failed in the container (exit %s)" % code)
    seconds = time.monotonic() - started
    shutil.rmtree(stage)
    size = os.path.getsize(iso)
    os.unlink(iso)
    return seconds, size


class PreparedBuilder(DiskBuilder):
    """The module's ISO build from the already exported tree (the export is the same for both sides: excluded)."""

    def image_id(self, reference):
        return "sha256:benchmark-%f" % time.time()


def module_iso(engine, rootfs, out_dir, level, image, builder="container"):
    builder = PreparedBuilder(engine, builder=builder)
    request = DiskRequest("iso", image, out_dir, name="module", squashfs_level=level)
    started = time.monotonic()
    result = builder.build(request, force=True, rootfs=rootfs)
    seconds = time.monotonic() - started
    size = result["size"]
    for path in (request.output, request.output + ".sha256", stamps.stamp_path(request.output)):
        os.unlink(path)
    return seconds, size


def raw_allocation(engine, image, out_dir, level):
    builder = DiskBuilder(engine, keep_work=False)
    request = DiskRequest("raw", image, out_dir, name="bench", squashfs_level=level)
    # measure the data while building: keep the work tree long enough to size it
    builder.keep_work = True
    result = builder.build(request, force=True)
    work = next(os.path.join(out_dir, n) for n in os.listdir(out_dir) if n.startswith(".edgeforge-work-bench"))
    data = 0
    for rel in ("recovery/cOS/recovery.squashfs", "recovery/cOS/vmlinuz", "recovery/cOS/initrd",
                "recovery/grub2/grub.cfg", "grub/BOOTX64.EFI", "grub/core.img", "grub/boot.img", "oem/90_custom.yaml"):
        path = os.path.join(work, rel)
        if os.path.exists(path):
            data += os.path.getsize(path)
    shutil.rmtree(work)
    allocated = result["allocated"]
    size = result["size"]
    for path in (request.output, request.output + ".sha256", stamps.stamp_path(request.output)):
        os.unlink(path)
    return {"disk_bytes": size, "allocated_bytes": allocated, "data_bytes": data,
            "ratio": round(allocated / float(data), 3), "seconds": result["seconds"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--image", required=True, help="installer image in the local engine")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--level", type=int, default=DEFAULT_SQUASHFS_LEVEL)
    parser.add_argument("--workdir", default=os.path.join(REPO, "benchmarks", "output", "iso_build"))
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    engine = DockerEngine()
    print("machine:", machine(), flush=True)
    ensure_builder_image(engine)
    out_dir = tempfile.mkdtemp(prefix="run-", dir=args.workdir)
    rootfs = os.path.join(out_dir, "rootfs")
    started = time.monotonic()
    streamed = export_rootfs(engine, args.image, rootfs)
    export_seconds = time.monotonic() - started
    print("export: %.1f s, %d MiB" % (export_seconds, streamed // 2 ** 20), flush=True)
    builder_image, _built = ensure_builder_image(engine)
    sides = (("bare-host", lambda: bare_iso(rootfs, out_dir, args.level)),
             ("module-host", lambda: module_iso(engine, rootfs, out_dir, args.level, args.image, "host")),
             ("bare-container", lambda: bare_iso(rootfs, out_dir, args.level, engine, builder_image)),
             ("module-container", lambda: module_iso(engine, rootfs, out_dir, args.level, args.image)))
    times = {name: [] for name, _run in sides}
    for round_no in range(args.rounds):
        for name, run in sides:
            seconds, size = run()
            times[name].append(seconds)
            print("round %d %-16s %.1f s (%d MiB)" % (round_no + 1, name, seconds, size // 2 ** 20), flush=True)
    shutil.rmtree(rootfs)
    raw = raw_allocation(engine, args.image, out_dir, args.level)
    shutil.rmtree(out_dir, ignore_errors=True)
    med = {name: statistics.median(values) for name, values in times.items()}
    summary = {
        "machine": machine(), "image": args.image, "squashfs_level": args.level,
        "export_seconds": round(export_seconds, 1),
        "seconds": {name: [round(v, 1) for v in values] for name, values in times.items()},
        "medians": {name: round(value, 1) for name, value in med.items()},
        "iso_ratio_container": round(med["module-container"] / med["bare-container"], 3),
        "iso_ratio_host": round(med["module-host"] / med["bare-host"], 3),
        "container_vs_host_bare": round(med["bare-container"] / med["bare-host"], 3),
        "raw": raw,
    }
    print(json.dumps(summary, indent=2))
    ok = summary["iso_ratio_container"] <= 1.15 and summary["iso_ratio_host"] <= 1.15 and raw["ratio"] <= 1.2
    print("ISO time ratio %.3f in the builder container, %.3f on the host (goal <= 1.15); raw allocation ratio %.3f "
          "(goal <= 1.2): %s" % (summary["iso_ratio_container"], summary["iso_ratio_host"], raw["ratio"],
                                 "OK" if ok else "ABOVE GOAL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
