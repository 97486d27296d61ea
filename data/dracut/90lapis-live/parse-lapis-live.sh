#!/bin/sh
# lapis.live=LABEL: the root comes from the live medium, not from root=.
# Tell dracut-cmdline that the root is handled (the mount hook mounts it).
live=$(getarg lapis.live=)
if [ -n "$live" ]; then
    root="lapis-live:$live"
    rootok=1
fi
