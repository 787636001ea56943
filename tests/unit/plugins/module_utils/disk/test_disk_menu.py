"""The boot menus: GRUB configuration text of the ISO (CONFORMANCE 5.8, token by token) and of the raw disk, and every
option of both generators (timeout, default entry, debug, extra command line, kernel and initrd paths)."""

import re
import subprocess

import pytest

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import menu
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.request import DiskRequest

# CONFORMANCE 5.8, written out here (not derived from the code under test)
CANVOS_ENTRY_0 = ("cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs net.ifnames=1 "
                  "console=tty1 console=ttyS0 rd.cos.disable vga=795 nomodeset nodepair.enable selinux=0 "
                  "rd.live.overlay.overlayfs rd.immucore.sysrootwait=600 systemd.unified_cgroup_hierarchy=1").split()
CANVOS_ENTRY_1 = [t for t in CANVOS_ENTRY_0 if t not in ("vga=795", "nomodeset", "nodepair.enable")]
CANVOS_ENTRY_2 = CANVOS_ENTRY_0 + ["interactive-install"]
CANVOS_TITLES = ["Palette eXtended Kubernetes Edge Installer", "Palette eXtended Kubernetes Edge Installer (manual)",
                 "Palette Edge Interactive Installer"]
DEBUG = ["rd.immucore.debug", "console=tty0", "rd.debug"]


def parse(cfg):
    """{default, timeout, timeout_style, entries: [(title, kernel, [args], initrd)], hidden: [titles]}."""
    entries = []
    for match in re.finditer(r'^menuentry "([^"]+)"[^{]*\{(.*?)^\}', cfg, re.M | re.S):
        body = match.group(2)
        linux = re.search(r"^\s*linux \(\$root\)(\S+)(.*)$", body, re.M)
        initrd = re.search(r"^\s*initrd \(\$root\)(\S+)\s*$", body, re.M)
        entries.append((match.group(1), linux.group(1), linux.group(2).split(), initrd.group(1)))

    def setting(name):
        found = re.findall(r"^set %s=(\S+)$" % name, cfg, re.M)
        assert len(found) <= 1, (name, found)
        return found[0] if found else None

    return {"default": setting("default"), "timeout": setting("timeout"), "timeout_style": setting("timeout_style"),
            "entries": entries, "hidden": re.findall(r'hiddenentry "([^"]+)" --hotkey "(\w)"', cfg)}


def test_iso_menu_is_canvos_token_by_token():
    cfg = parse(menu.iso_grub_cfg())
    assert [e[0] for e in cfg["entries"]] == CANVOS_TITLES
    assert [e[2] for e in cfg["entries"]] == [CANVOS_ENTRY_0, CANVOS_ENTRY_1, CANVOS_ENTRY_2]
    assert all(e[1] == "/boot/kernel" and e[3] == "/boot/initrd" for e in cfg["entries"])
    assert (cfg["default"], cfg["timeout"], cfg["timeout_style"]) == ("0", "5", "menu")
    assert cfg["hidden"] == [("Text mode", "t")]
    for args in (e[2] for e in cfg["entries"]):
        assert "install-mode" not in args and args.index("console=ttyS0") > args.index("console=tty1")


def test_iso_menu_text_mode_entry_only_on_efi_and_font_from_the_loader_tree():
    text = menu.iso_grub_cfg()
    hidden = text.index('hiddenentry "Text mode"')
    assert text.rfind('if [ "${grub_platform}" = "efi" ]; then', 0, hidden) > text.rfind("menuentry", 0, hidden)
    assert "set font=($root)/boot/${grub_cpu}/loader/grub2/fonts/unicode.pf2" in text
    assert "kernel.xz" not in text  # CanvOS searches for a file enki never writes (B12)


@pytest.mark.parametrize("force_interactive, expected", [(False, "0"), (True, "2")])
def test_iso_default_entry_follows_force_interactive_install(force_interactive, expected):
    cfg = parse(DiskRequest("iso", "img:1", "/tmp/x", force_interactive_install=force_interactive).grub_cfg())
    assert cfg["default"] == expected
    assert cfg["entries"][int(expected)][0] == CANVOS_TITLES[int(expected)]


def test_iso_debug_appends_its_tokens_to_every_entry():
    cfg = parse(DiskRequest("iso", "img:1", "/tmp/x", debug=True).grub_cfg())
    assert [e[2] for e in cfg["entries"]] == [CANVOS_ENTRY_0 + DEBUG, CANVOS_ENTRY_1 + DEBUG, CANVOS_ENTRY_2 + DEBUG]


@pytest.mark.parametrize("timeout", [0, 1, 17, 600])
def test_timeout_of_both_menus(timeout):
    assert parse(DiskRequest("iso", "img:1", "/tmp/x", grub_timeout=timeout).grub_cfg())["timeout"] == str(timeout)
    assert parse(DiskRequest("raw", "img:1", "/tmp/x", grub_timeout=timeout).grub_cfg())["timeout"] == str(timeout)


@pytest.mark.parametrize("kind, timeout", [("iso", -1), ("iso", 601), ("raw", -5), ("raw", 601)])
def test_timeout_outside_the_range_is_refused(kind, timeout):
    with pytest.raises(Exception) as err:
        DiskRequest(kind, "img:1", "/tmp/x", grub_timeout=timeout)
    assert "grub_timeout" in str(err.value) and "0-600" in str(err.value)


@pytest.mark.parametrize("kind", ["iso", "raw"])
def test_extra_cmdline_ends_every_entry_after_the_debug_tokens(kind):
    plain = parse(DiskRequest(kind, "img:1", "/tmp/x").grub_cfg())["entries"]
    cfg = parse(DiskRequest(kind, "img:1", "/tmp/x", extra_cmdline="ds=nocloud  panic=5", debug=True).grub_cfg())
    assert len(cfg["entries"]) == len(plain)
    for entry, base in zip(cfg["entries"], plain):
        assert entry[2] == base[2] + DEBUG + ["ds=nocloud", "panic=5"]


@pytest.mark.parametrize("extra", ['quiet "x"', "a\nb"])
def test_extra_cmdline_with_quotes_or_lines_is_refused(extra):
    with pytest.raises(Exception) as err:
        DiskRequest("iso", "img:1", "/tmp/x", extra_cmdline=extra)
    assert "extra_cmdline" in str(err.value)


def test_kernel_and_initrd_paths_of_both_generators():
    iso = parse(menu.iso_grub_cfg(kernel="/k/vmlinuz-6.1", initrd="/k/initrd-6.1"))
    assert {(e[1], e[3]) for e in iso["entries"]} == {("/k/vmlinuz-6.1", "/k/initrd-6.1")}
    raw = parse(menu.raw_grub_cfg(kernel="/cOS/k2", initrd="/cOS/i2"))
    assert {(e[1], e[3]) for e in raw["entries"]} == {("/cOS/k2", "/cOS/i2")}


def test_raw_menu_boots_recovery_live():
    cfg = menu.raw_grub_cfg()
    assert "root=live:LABEL=COS_RECOVERY rd.live.dir=/cOS rd.live.squashimg=recovery.squashfs" in cfg
    assert "($root)/cOS/vmlinuz" in cfg and "($root)/cOS/initrd" in cfg
    assert "set default=0" in cfg
    assert "set default=1" in DiskRequest("raw", "i:1", "/tmp/x", default_entry="reset").grub_cfg()
    parsed = parse(cfg)
    assert [e[0] for e in parsed["entries"]] == ["Palette eXtended Kubernetes Edge Recovery",
                                                 "Palette eXtended Kubernetes Edge Reset"]
    assert parsed["entries"][1][2] == parsed["entries"][0][2] + ["kairos.reset"]
    assert "rd.debug" not in cfg


def test_raw_default_entry_is_validated():
    with pytest.raises(Exception) as err:
        DiskRequest("raw", "i:1", "/tmp/x", default_entry="registration")
    assert "default_entry" in str(err.value) and "recovery, reset" in str(err.value)


@pytest.mark.parametrize("text", [menu.iso_grub_cfg(debug=True, extra_args="a=b"), menu.raw_grub_cfg()])
def test_menus_are_balanced_grub_scripts(text):
    assert text.count("{") == text.count("}")
    opened = sum(1 for line in text.splitlines() if re.match(r"\s*if ", line))
    assert opened == sum(1 for line in text.splitlines() if line.strip() == "fi")
    if subprocess.run(["sh", "-c", "command -v grub-script-check"], capture_output=True, check=False).returncode == 0:
        check = subprocess.run(["grub-script-check"], input=text.encode(), capture_output=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr


def test_early_config():
    assert menu.early_grub_cfg("--label COS_RECOVERY", "/grub2") == (
        "search --no-floppy --label COS_RECOVERY --set=root\nset prefix=($root)/grub2\n")
    assert menu.early_grub_cfg("--fs-uuid X", "/boot/grub", chain=True).endswith(
        "configfile ($root)/boot/grub/grub.cfg\n")


def test_iso_menu_guards_hiddenentry_for_grubs_without_it():
    """Debian's signed GRUB has no hiddenentry command: a quiet function of that name is defined first (at top level,
    where GRUB allows functions); GRUB runs a command of that name before a function, so openSUSE's still hides the
    entry."""
    text = menu.iso_grub_cfg()
    function = text.index("function hiddenentry {\n    set textmode_entry=none\n}\n")
    assert function < text.index('hiddenentry "Text mode"')
    assert text[:function].count("\nif ") == text[:function].count("\nfi\n")  # not inside an if block


def _block(text, opening):
    """The lines of the if block that starts with ``opening`` (up to its own fi)."""
    lines = text.splitlines()
    start = lines.index(opening)
    indent = len(opening) - len(opening.lstrip())
    end = next(i for i in range(start + 1, len(lines)) if lines[i] == " " * indent + "fi")
    return lines[start:end + 1]


def test_raw_menu_takes_next_entry_once_else_saved_entry():
    """CONFORMANCE 6.6 step 1: the OEM grubenv's next_entry for one boot (cleared, never saved_entry), otherwise its
    saved_entry (set after the reset: registration) as the default of every boot."""
    text = menu.raw_grub_cfg()
    oem_block = _block(text, "if search --no-floppy --label COS_OEM --set=oem; then")
    assert oem_block[1:4] == ["    if [ -f (${oem})/grubenv ]; then", "        load_env -f (${oem})/grubenv", "    fi"]
    assert _block(text, '    if [ -n "${next_entry}" ]; then') == [
        '    if [ -n "${next_entry}" ]; then',
        '        set default="${next_entry}"',
        "        set next_entry=",
        "        save_env -f (${oem})/grubenv next_entry",
        '    elif [ -n "${saved_entry}" ]; then',
        '        set default="${saved_entry}"',
        "    fi",
    ]
    assert text.count("save_env") == 1 and text.index("fi\n", text.index("elif")) < text.index("menuentry")


def test_raw_menu_sources_a_grubmenu_found_on_any_partition_after_its_own_entries():
    """The state partition's /grubmenu (after the reset) adds registration and statereset: searched by file (no label),
    sourced after our entries, so saved_entry=registration finds its entry and statereset stays ours."""
    text = menu.raw_grub_cfg()
    assert _block(text, "if search --no-floppy --file /grubmenu --set=extra_menu; then") == [
        "if search --no-floppy --file /grubmenu --set=extra_menu; then",
        "    source (${extra_menu})/grubmenu",
        "fi",
    ]
    assert text.index("source (${extra_menu})/grubmenu") > text.rindex("menuentry")
    assert text.endswith("fi\n")


def test_iso_menu_reads_no_grubenv_and_sources_no_grubmenu():
    text = menu.iso_grub_cfg()
    assert "grubenv" not in text and "grubmenu" not in text and "saved_entry" not in text
