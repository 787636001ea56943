#!/bin/sh
# Final layout of the stand-in base: /boot/vmlinuz + /boot/initrd (the names Kairos images use), a smaller
# module tree (drivers a VM or an edge box in the tests never loads), and the boot-report unit enabled.
set -eu
kver=""
for dir in /lib/modules/*; do kver=${dir##*/}; done
test -n "$kver" && test -d "/lib/modules/$kver"
if [ ! -s "/boot/initrd.img-$kver" ]; then
    dracut --force "/boot/initrd.img-$kver" "$kver"
fi
mv "/boot/vmlinuz-$kver" /boot/vmlinuz
mv "/boot/initrd.img-$kver" /boot/initrd
rm -f /vmlinuz /vmlinuz.old /initrd.img /initrd.img.old
ln -s boot/vmlinuz /vmlinuz
ln -s boot/initrd /initrd.img
mods="/lib/modules/$kver/kernel"
rm -rf "$mods/sound" "$mods/drivers/gpu" "$mods/drivers/media" "$mods/drivers/net/wireless" \
       "$mods/drivers/infiniband" "$mods/drivers/staging" "$mods/drivers/bluetooth" "$mods/drivers/iio" \
       "$mods/drivers/isdn" "$mods/drivers/hid" "$mods/drivers/input/touchscreen" "$mods/net/wireless" \
       "$mods/net/mac80211" "$mods/net/bluetooth"
depmod -a "$kver"
systemctl enable edgeforge-boot-ok.service
systemctl set-default multi-user.target
# Log in on the serial console without a password: the VM boot tests read ttyS0.
passwd -d root
echo "edgeforge-standin" > /etc/hostname
