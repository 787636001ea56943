"""Shared pieces of the ISO / raw disk / boot-check integration tests.

The installer image is built once per session from the test bed's stand-in base image (kernel, systemd, dracut live
initrd, the EDGEFORGE-BOOT-OK unit) with the stand-in stylus framework copied in - the layout the provider_images
role gives ``palette-installer-image:<tag>``. The ISO and the raw image are built once (through the real modules, by
``ansible-playbook``) and memoised in this module, so test_installer_iso, test_raw_disk_image and test_boot_check
share them instead of squashing the same root filesystem several times.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import subprocess
import tarfile
import textwrap

from tests.integration.helpers import run_playbook
from tests.testbed.session_names import mark

# unique per test run: a run never builds on, or removes, what another run (or a leftover) tagged
RUN_ID = secrets.token_hex(4)
INSTALLER_TAG = "edgeforge-test-iso-installer:run-%s" % RUN_ID
TINY_TAG = "edgeforge-test-iso-tiny:run-%s" % RUN_ID
TOKEN = "edgeforge-token-" + secrets.token_hex(8)  # must never appear in any output
LOCAL_UI_FILE = "local-ui/index.html"  # what the test local-ui.tar holds
_CACHE = {}


def _build(client, tag, dockerfile, files=None):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in dict(files or {}, Dockerfile=dockerfile.encode()).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    for event in client.api.build(fileobj=buffer, custom_context=True, tag=tag, rm=True, forcerm=True,
                                  decode=True):
        if "error" in event:
            raise RuntimeError("build of %s failed: %s" % (tag, event["error"]))
    return mark(tag)  # the run's own tag goes when the session ends (tests/testbed/session_names.py)


def installer_image(docker_engine, standin_images):
    """palette-installer-image stand-in: the stand-in base + the stand-in stylus framework."""
    if "installer" not in _CACHE:
        stylus = standin_images.stylus_frameworks[standin_images.pe_version]
        _CACHE["installer"] = _build(docker_engine.client, INSTALLER_TAG, textwrap.dedent("""\
            FROM %s AS stylus
            FROM %s
            COPY --from=stylus / /
            LABEL io.edgeforge.test=installer-iso
            """ % (stylus, standin_images.base_image_tag)))
    return _CACHE["installer"]


def tiny_image(docker_engine):
    """An image with just a fake kernel and initrd: for ISO layout tests that never boot (fast to squash)."""
    if "tiny" not in _CACHE:
        _CACHE["tiny"] = _build(docker_engine.client, TINY_TAG, textwrap.dedent("""\
            FROM scratch
            COPY vmlinuz /boot/vmlinuz
            COPY initrd /boot/initrd
            COPY hello /etc/hello
            CMD ["/bin/sh"]
            """), {"vmlinuz": b"not a kernel\n" * 100, "initrd": b"not an initrd\n" * 100, "hello": b"hi\n"})
    return _CACHE["tiny"]


def write_inputs(directory):
    """User data (with TOKEN), a content directory with small bundles, a cluster definition and an edge config."""
    os.makedirs(directory, exist_ok=True)
    paths = {
        "user_data": os.path.join(directory, "user-data"),
        "content": os.path.join(directory, "content-a1b2c3"),
        "clusterconfig": os.path.join(directory, "spc.tgz"),
        "edge_custom_config": os.path.join(directory, ".edge-custom-config.yaml"),
        "local_ui": os.path.join(directory, "local-ui.tar"),
    }
    with open(paths["user_data"], "w", encoding="utf-8") as handle:
        handle.write("#cloud-config\nstylus:\n  site:\n    paletteEndpoint: api.spectrocloud.com\n"
                     "    edgeHostToken: %s\n" % TOKEN)
    os.makedirs(paths["content"], exist_ok=True)
    with open(os.path.join(paths["content"], "core-bundle.tar.zst"), "wb") as handle:
        handle.write(b"\x28\xb5\x2f\xfd" + b"bundle" * 1000)
    with open(os.path.join(paths["content"], "extra.tar"), "wb") as handle:
        handle.write(b"tar bundle" * 100)
    with open(os.path.join(paths["content"], "notes.txt"), "w", encoding="utf-8") as handle:
        handle.write("ignored\n")
    with open(paths["clusterconfig"], "wb") as handle:
        handle.write(b"\x1f\x8b spc archive")
    with open(paths["edge_custom_config"], "w", encoding="utf-8") as handle:
        handle.write("content:\n  signing:\n    publicKey:\n      base64EncodedValue: AAAA\n")
    with tarfile.open(paths["local_ui"], "w") as archive:
        data = b"<html>local UI</html>\n"
        info = tarfile.TarInfo(LOCAL_UI_FILE)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return paths


def module_playbook(path, module, args, result_path):
    """A one-task playbook on localhost that runs ``module`` and writes its registered result to ``result_path``."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(textwrap.dedent("""\
            - hosts: localhost
              connection: local
              gather_facts: false
              vars:
                ansible_python_interpreter: "{{ ansible_playbook_python }}"
              tasks:
                - name: Run the module
                  %s: %s
                  register: out
                  ignore_errors: true
                - name: Keep the result for the test
                  check_mode: false
                  ansible.builtin.copy:
                    content: "{{ out | to_json }}"
                    dest: %s
                    mode: "0600"
            """ % (module, json.dumps(args), json.dumps(result_path))))
    return path


def run_module(tmp_dir, module, args, check=False, verbosity=0):
    """Run ``edgeforge.artifacts.<module>`` through ansible-playbook; return (result dict, PlaybookResult)."""
    name = secrets.token_hex(4)
    result_path = os.path.join(str(tmp_dir), "result-%s.json" % name)
    playbook = module_playbook(os.path.join(str(tmp_dir), "play-%s.yml" % name), "edgeforge.artifacts." + module,
                               args, result_path)
    proc = run_playbook(playbook, check=check, verbosity=verbosity)
    assert os.path.exists(result_path), proc.stdout + proc.stderr
    with open(result_path, encoding="utf-8") as handle:
        return json.loads(handle.read()), proc


def built_iso(docker_engine, standin_images, tmp_path_factory):
    """The ISO of the stand-in installer image with every kind of input (built once)."""
    if "iso" not in _CACHE:
        work = str(tmp_path_factory.mktemp("iso-artifacts"))
        inputs = write_inputs(os.path.join(work, "inputs"))
        args = {"installer_image": installer_image(docker_engine, standin_images),
                "build_dir": os.path.join(work, "build"), "user_data": inputs["user_data"],
                "content_dir": [inputs["content"]], "clusterconfig": inputs["clusterconfig"],
                "edge_custom_config": inputs["edge_custom_config"], "local_ui": inputs["local_ui"]}
        result, proc = run_module(work, "installer_iso", args, verbosity=3)
        _CACHE["iso"] = {"result": result, "proc": proc, "args": args, "inputs": inputs, "work": work}
    return _CACHE["iso"]


def built_raw(docker_engine, standin_images, tmp_path_factory):
    """The raw disk image of the stand-in installer image, with user data and a content partition (built once)."""
    if "raw" not in _CACHE:
        work = str(tmp_path_factory.mktemp("raw-artifacts"))
        inputs = write_inputs(os.path.join(work, "inputs"))
        args = {"installer_image": installer_image(docker_engine, standin_images),
                "build_dir": os.path.join(work, "build"), "user_data": inputs["user_data"],
                "content_dir": [inputs["content"]], "clusterconfig": inputs["clusterconfig"],
                "edge_custom_config": inputs["edge_custom_config"], "local_ui": inputs["local_ui"],
                "raw_name": "edge-cloud"}
        result, proc = run_module(work, "raw_disk_image", args, verbosity=3)
        _CACHE["raw"] = {"result": result, "proc": proc, "args": args, "inputs": inputs, "work": work}
    return _CACHE["raw"]


def grub_menu(cfg):
    """{default, timeout, timeout_style, entries: [{title, kernel, args (tokens), initrd}]} of a grub.cfg."""
    entries = []
    for match in re.finditer(r'^menuentry "([^"]+)"[^{]*\{(.*?)^\}', cfg, re.M | re.S):
        linux = re.search(r"^\s*linux \(\$root\)(\S+)(.*)$", match.group(2), re.M)
        initrd = re.search(r"^\s*initrd \(\$root\)(\S+)\s*$", match.group(2), re.M)
        entries.append({"title": match.group(1), "kernel": linux.group(1), "args": linux.group(2).split(),
                        "initrd": initrd.group(1)})
    settings = {name: re.findall(r"^set %s=(\S+)$" % name, cfg, re.M) for name in
                ("default", "timeout", "timeout_style")}
    return dict({name: values[0] if len(values) == 1 else values for name, values in settings.items()},
                entries=entries)


def squashfs_file(squashfs, path, max_links=10):
    """The bytes of ``path`` (absolute, as the image sees it) in a squashfs, symbolic links followed inside it."""
    for _link in range(max_links):
        rel = os.path.normpath(path).lstrip("/")
        listing = subprocess.run(["unsquashfs", "-ll", "-d", "", squashfs, rel], capture_output=True, text=True,
                                 check=True).stdout
        entry = next(line for line in listing.splitlines() if line.split(" -> ")[0].endswith("/" + rel))
        if " -> " not in entry:
            return subprocess.run(["unsquashfs", "-cat", squashfs, rel], capture_output=True, check=True).stdout
        link = entry.split(" -> ", 1)[1]
        path = link if link.startswith("/") else os.path.join(os.path.dirname("/" + rel), link)
    raise AssertionError("too many links at %s in %s" % (path, squashfs))


def xorriso_listing(iso):
    """{path: size} of every file in the ISO (Rock Ridge names)."""
    out = subprocess.run(["xorriso", "-indev", iso, "-find", "/", "-type", "f", "-exec", "lsdl"],
                         capture_output=True, text=True, check=True).stdout
    files = {}
    for line in out.splitlines():
        parts = line.split(None, 8)
        if len(parts) == 9 and line.startswith("-"):
            files[parts[8].strip("'")] = int(parts[4])
    return files


def xorriso_extract(iso, path, dest):
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", path, dest], capture_output=True,
                   check=True)
    with open(dest, "rb") as handle:
        return handle.read()


# the signed boot chain the stand-in base image carries at the Kairos paths (boot_chain's search lists)
SIGNED_SHIM = "/usr/lib/shim/shimx64.efi.signed"
SIGNED_GRUB = "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
ESP_FILES = ["EFI/BOOT/bootx64.efi", "EFI/BOOT/grub.cfg", "EFI/BOOT/grubx64.efi", "EFI/ubuntu/grub.cfg"]


def image_file(docker_engine, image, path):
    """The bytes of ``path`` in ``image``: links resolved in the image (readlink -f), the file read with the engine's
    archive API (a container's output is no way to carry megabytes of binary data)."""
    client = docker_engine.client
    real = client.containers.run(image, ["readlink", "-f", path], remove=True, entrypoint=[]).decode().strip()
    container = client.containers.create(image, command=["/bin/true"], entrypoint=[])
    try:
        chunks, _stat = container.get_archive(real)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
            return archive.extractfile(archive.getmembers()[0]).read()
    finally:
        container.remove(force=True)


def fat_files(image):
    """{lower-case path: bytes} of every file in a FAT image (``image`` may be ``file@@offset``), read with mtools."""
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    listing = subprocess.run(["mdir", "-/", "-b", "-i", image, "::"], capture_output=True, text=True, check=True,
                             env=env).stdout.split()
    files = {}
    for entry in listing:
        if entry.endswith("/"):
            continue
        rel = entry[len("::/"):]
        files[rel.lower()] = subprocess.run(["mtype", "-i", image, "::/" + rel], capture_output=True, check=True,
                                            env=env).stdout
    return files


def first_boot_min_gib(raw_path, state_mib=None):
    """The smallest root volume (GiB, rounded up) a raw image needs, worked out here from its partition table as
    ``sfdisk -J`` reads it: the end of the last partition, the state partition (``state_mib``, as its 01_reset.yaml
    says; else 3 x recovery + 100 MiB), a persistent partition of 10 GiB plus twice the content partition, and
    1 MiB for the backup GPT."""
    mib, gib = 1024 * 1024, 1024 * 1024 * 1024
    parts = json.loads(subprocess.run(["sfdisk", "-J", raw_path], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]["partitions"]
    size = {p.get("name"): p["size"] * 512 for p in parts}
    end = max((p["start"] + p["size"]) * 512 for p in parts)
    if state_mib is None:
        state_mib = 3 * size["recovery"] // mib + 100
    need = end + state_mib * mib + 10 * gib + 2 * size.get("content", 0) + mib
    return -(-need // gib)
