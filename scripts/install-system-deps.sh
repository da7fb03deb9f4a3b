#!/usr/bin/env bash
# Install the Debian packages the pipeline needs, only where missing. PDFs are rendered in
# process by pdfium (pypdfium2), so no poppler is needed (README: PDF rendering).
#   CJK fonts      fonts-wqy-microhei renders the sample invoices (scripts/make_samples.py: the committed
#                  samples regenerate byte for byte only with it), fonts-wqy-zenhei draws OFD/XML pages;
#                  both on every machine, so that which font is chosen never depends on the machine
# With --test, also what the test suite needs:
#   chromium, chromium-driver  the headless browser the review page's tests drive (no download)
#   postgresql     the server the PostgreSQL index tests start (initdb/pg_ctl, with pg_trgm)
set -euo pipefail

missing=()
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing+=(fonts-wqy-zenhei)
command -v fc-list >/dev/null 2>&1 || missing+=(fontconfig)
if [ "${1:-}" = "--test" ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  ls /usr/share/postgresql/*/extension/pg_trgm.control >/dev/null 2>&1 || missing+=(postgresql-contrib)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]}" >&2
  echo "run: sudo apt-get install -y ${missing[*]}" >&2
  exit 3
fi
echo "installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
