#!/bin/sh
# PyPI programs of the data workloads, every file pinned by version and sha256
# (pip --require-hashes --no-deps: the lists are complete), in the venv /opt/schedcp/py:
# chdb 4.4.0 (ClickHouse 26.9 engine in-process) for the clickhouse workload, plus the
# build tools step 63 (feature llama-cpp) compiles llama-cpp-python with.
# PyTorch and FAISS come from Debian (python3-torch, python3-faiss) for /usr/bin/python3.
set -eu
. "$(dirname "$0")/lib/pip-chroot.sh"
pip_in_chroot "$1" <<'IN'
python3 -m venv /opt/schedcp/py
/opt/schedcp/py/bin/pip --version
ls -la "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
cat > /tmp/req-runtime.txt <<'REQ'
chdb==4.4.0 --hash=sha256:b9d1159b19a101a650e72e085631dcc3a0879c31faf7c098bff3ea51dbba2daf
chdb-core==26.9.0 --hash=sha256:707e2ec3fe0f7953bac97942eaeb7a1ed1d66b1e56ecef3f0aa2130f61f6e735
pandas==3.1.1 --hash=sha256:645fa00fd85cfced2d2c09dc116d3694f578501b1ce4899153fbe64788ecda98
pyarrow==26.0.1 --hash=sha256:f71221bbc7707e3fad920d0478db9350791d4714ec445299ee0d56559fbc156c
numpy==2.5.5 --hash=sha256:824025655df929268bfe6b47ed91a00d14209a6f760847cf150be446829e1ce4
python-dateutil==4.0.0 --hash=sha256:a5e246f79eb80475e691bf93862cead98decd8a498cf53ba0516fcdc0f50dc1c
tzdata==2026.6 --hash=sha256:0a10eec6e13ef16b627fabed9a5f2ba61a62b1c67f327305f4e7e412a70b4aec
typing-extensions==4.16.0 --hash=sha256:481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8
diskcache==5.6.3 --hash=sha256:5e31b2d5fbad117cc363ebaf6b689474db18a1f6438bc82358b024abd4c2ca19
jinja2==3.1.6 --hash=sha256:85ece4451f492d0c13c5dd7c13a64681a86afae63a5f347908daf103ce6d2f67
markupsafe==3.0.4 --hash=sha256:434139499bb20b502ed3baa1f169e618f924a97e7a777fea1a49446d80106cf6
scikit-build-core==1.1.2 --hash=sha256:7f4f959a467692db50bdd1ea7ce1507f2c7972e6023b753ee302d169bc4cec85
packaging==26.4 --hash=sha256:81383611a09c1bc0b08b76e0fd5829d7c6824c65b27a6aee339da133f4233ea2
pathspec==1.1.1 --hash=sha256:a00ce642f577bf7f473932318056212bc4f8bfdf53128c78bbd5af0b9b20b189
REQ
/opt/schedcp/py/bin/pip install -q --require-hashes --no-deps -r /tmp/req-runtime.txt
/opt/schedcp/py/bin/python -c 'import chdb; print("chdb", chdb.__version__)'
rm -f /tmp/req-*.txt
du -sh /opt/schedcp/py
IN
