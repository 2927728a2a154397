#!/bin/sh
# Start `quill serve`. QUILL_MODEL may be a path (a mounted volume) or an http(s) URL, which is
# fetched into /models once (kept when /models is a volume) before the server starts.
set -eu
case "${QUILL_MODEL:-}" in
  http://*|https://*)
    file="/models/$(basename "${QUILL_MODEL%%\?*}")"
    if [ ! -s "$file" ]; then
      echo "fetching $QUILL_MODEL into $file" >&2
      curl -fL --retry 3 -o "$file.part" "$QUILL_MODEL"
      mv "$file.part" "$file"
    fi
    QUILL_MODEL="$file"
    export QUILL_MODEL
    ;;
esac
exec /usr/local/bin/quill serve "$@"
