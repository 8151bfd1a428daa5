#!/bin/sh
# containerd runs this instead of runc (BinaryName in containerd.toml).
# The kubelet asks for a negative oom_score_adj for pod sandboxes (-998) and
# Guaranteed pods (-997); writing a negative value needs CAP_SYS_RESOURCE, which
# this machine's root does not have, and runc then fails with "can't get final
# child's PID from pipe: EOF". Before `runc create`, such values become 0 in the
# bundle's config.json (positive ones, Burstable and BestEffort, stay as they are).
bundle=""
prev=""
create=0
for arg in "$@"; do
  case "$prev" in --bundle|-b) bundle="$arg" ;; esac
  [ "$arg" = create ] && create=1
  prev="$arg"
done
if [ "$create" = 1 ] && [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
  sed -i -E 's/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/' "$bundle/config.json"
fi
exec /usr/sbin/runc "$@"
