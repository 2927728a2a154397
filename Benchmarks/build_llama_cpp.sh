#!/usr/bin/env bash
# Builds llama.cpp's own tools (llama-bench, llama-quantize, llama-perplexity, llama-server,
# llama-imatrix) from
# the llama-cpp-python sdist that scripts/setup caches, for side-by-side runs with Quill.
#   Benchmarks/build_llama_cpp.sh        # prints the bin directory
# Needs cmake and ninja (pip install cmake ninja); about 15 minutes on 2 cores, once.
set -euo pipefail
CACHE="${QUILL_CACHE:-$HOME/.cache/quill}"
BUILD="${LLAMA_CPP_BUILD:-$CACHE/llama.cpp-build}"
TOOLS=(llama-bench llama-quantize llama-perplexity llama-server llama-imatrix)
missing=0
for tool in "${TOOLS[@]}"; do [ -x "$BUILD/bin/$tool" ] || missing=1; done
if [ "$missing" = 0 ]; then echo "$BUILD/bin"; exit 0; fi
SDIST="$CACHE/downloads/llama_cpp_python-0.3.36.tar.gz"
[ -f "$SDIST" ] || { echo "missing $SDIST: run scripts/setup first" >&2; exit 1; }
command -v cmake >/dev/null || pip install -q cmake ninja >&2
SRC="$CACHE/llama.cpp-src"
if [ ! -d "$SRC" ]; then
    mkdir -p "$SRC"
    tar -xzf "$SDIST" -C "$SRC" --strip-components=3 llama_cpp_python-0.3.36/vendor/llama.cpp
fi
cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
      -DLLAMA_BUILD_TESTS=OFF >&2
cmake --build "$BUILD" --target "${TOOLS[@]}" -j"$(nproc)" >&2
echo "$BUILD/bin"
