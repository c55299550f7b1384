# Sourced by the steps that pip-install into the image (62, 63). `pip_in_chroot ROOT`
# runs the shell script on its stdin inside the chroot ROOT, with what pip needs to
# reach PyPI: name resolution (the host's, if the chroot has none of its own) and the
# build host's CA bundle (a TLS-inspecting proxy's CA included; the sha256 hashes in
# the steps, not TLS, are what pin the files). Both are removed again at exit.
pip_in_chroot() {
  root="$1"
  cleanup="rm -f $root/tmp/schedcp-build-ca.crt"
  if [ ! -s "$root/etc/resolv.conf" ]; then
    rm -f "$root/etc/resolv.conf"; cp /etc/resolv.conf "$root/etc/resolv.conf"
    cleanup="$cleanup $root/etc/resolv.conf"
  fi
  trap '$cleanup' EXIT
  ca=/etc/ssl/certs/ca-certificates.crt
  [ -n "${PIP_CERT:-}" ] && [ -s "$PIP_CERT" ] && ca=$PIP_CERT
  cert=""
  if [ -s "$ca" ]; then cp "$ca" "$root/tmp/schedcp-build-ca.crt"; cert=/tmp/schedcp-build-ca.crt; fi
  echo "pip CA bundle: ${cert:-the image's own}"
  chroot "$root" /usr/bin/env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CERT \
    ${cert:+PIP_CERT=$cert} ${cert:+SSL_CERT_FILE=$cert} \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_RETRIES=2 /bin/sh -eu
}
