#!/usr/bin/env bash
# Builds a local stand-in for node:24-bookworm-slim when no registry image can be pulled:
# Debian bookworm (debootstrap minbase, from the mirror this machine's apt uses), the Node build
# running this script copied to /usr/local/bin/node, npm beside it (installed from the npm
# registry with this machine's npm), a `node` user with uid/gid 1000, and this machine's CA bundle.
# Usage: local-base.sh IMAGE_TAG WORK_DIR   (podman must already be configured by the caller:
# `make base` runs it with deploy/make/containers.conf; the deploy tests with their own storage).
set -euo pipefail
tag=$1
work=$2
command -v debootstrap >/dev/null || { echo "local-base.sh: debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "local-base.sh: debootstrap needs root: run it (make base) as root" >&2; exit 1; }
command -v node >/dev/null || { echo "local-base.sh: no node on PATH: put Node 24 first on PATH (README, Prerequisites)" >&2; exit 1; }
mkdir -p "$work"
node_bin=$(command -v node)
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" = 24 ] || { echo "local-base.sh: node on PATH is $(node -v), not 24" >&2; exit 1; }

# The mirror apt uses here (deb822 sources first, then sources.list).
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || { echo "local-base.sh: no Debian mirror found in /etc/apt/sources.list(.d)" >&2; exit 1; }

rootfs="$work/rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 20 "$work/debootstrap.log" >&2
  exit 1
}
install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
# npm for Node 24 (the official image ships npm 11), installed into the image's /usr/local.
npm install --global --prefix "$rootfs/usr/local" --no-fund --no-audit --loglevel=error npm@11 >/dev/null
install -m 0644 -D "$(readlink -f /etc/ssl/certs/ca-certificates.crt)" "$rootfs/etc/ssl/certs/ca-certificates.crt"
echo "node:x:1000:" >>"$rootfs/etc/group"
echo "node:x:1000:1000::/home/node:/bin/sh" >>"$rootfs/etc/passwd"
echo "node:!:19000:0:99999:7:::" >>"$rootfs/etc/shadow"
mkdir -p "$rootfs/home/node"
chown 1000:1000 "$rootfs/home/node"
rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*

tar -C "$rootfs" -c . | "${ENGINE:-podman}" import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' \
  - "$tag" >/dev/null
rm -rf "$rootfs"
echo "$tag"
