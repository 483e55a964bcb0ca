#!/bin/sh
# Test stand-in for invoke-rc.d NAME ACTION (options skipped).
while [ "${1#-}" != "$1" ]; do shift; done
name="$1"; action="$2"
if [ -x "$DPKG_ROOT/usr/sbin/policy-rc.d" ]; then
    rc=0; "$DPKG_ROOT/usr/sbin/policy-rc.d" "$name" "$action" || rc=$?
    [ "$rc" = 101 ] && exit 0
fi
exec systemctl "$action" "$name.service"
