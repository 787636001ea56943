"""The boot menus: GRUB configuration text of the ISO and of the raw disk."""

from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import menu
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk import rootfs
from ansible_collections.edgeforge.artifacts.plugins.module_utils.disk.request import DiskRequest


def test_iso_menu_has_the_canvos_entries_and_the_kairos_live_cmdline():
    cfg = menu.iso_grub_cfg()
    titles = [line.split('"')[1] for line in cfg.splitlines() if line.startswith("menuentry")]
    assert titles == ["Palette eXtended Kubernetes Edge Installer",
                      "Palette eXtended Kubernetes Edge Installer (manual)", "Palette Edge Interactive Installer"]
    assert "set default=0" in cfg
    linux = [line for line in cfg.splitlines() if line.strip().startswith("linux ")]
    assert len(linux) == 3
    for line in linux:
        assert "root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs" in line
        assert "console=ttyS0" in line
        assert "rd.debug" not in line
    assert "install-mode" in linux[0] and "install-mode" not in linux[1]
    assert "interactive-install" in linux[2]


def test_force_interactive_and_debug():
    cfg = DiskRequest("iso", "img:1", "/tmp/x", force_interactive_install=True, debug=True).grub_cfg()
    assert "set default=2" in cfg
    for line in cfg.splitlines():
        if line.strip().startswith("linux "):
            assert line.endswith("rd.immucore.debug console=tty0 rd.debug")


def test_raw_menu_boots_recovery_live():
    cfg = menu.raw_grub_cfg()
    assert "root=live:LABEL=COS_RECOVERY rd.live.dir=/cOS rd.live.squashimg=recovery.squashfs" in cfg
    assert "($root)/cOS/vmlinuz" in cfg and "($root)/cOS/initrd" in cfg
    assert "set default=0" in cfg
    assert "set default=1" in DiskRequest("raw", "i:1", "/tmp/x", default_entry="reset").grub_cfg()


def test_early_config():
    assert menu.early_grub_cfg("--label COS_RECOVERY", "/grub2") == (
        "search --no-floppy --label COS_RECOVERY --set=root\nset prefix=($root)/grub2\n")
    assert menu.early_grub_cfg("--fs-uuid X", "/boot/grub", chain=True).endswith(
        "configfile ($root)/boot/grub/grub.cfg\n")
