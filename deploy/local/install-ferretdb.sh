#!/usr/bin/env bash
# Build FerretDB 1.24.2 into .tools/bin from the Go module proxy.
#
# A plain `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`
# compiles, but the binary panics at start with "Invalid
# build/version/version.txt file content": the release process writes that
# file with `git describe`, and module downloads do not contain it. So this
# script downloads the same module version, adds the file with the release
# tag and builds from that copy. FerretDB 1.24.2 needs Go 1.24 or newer.
set -euo pipefail

version=v1.24.2
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/.tools/bin"
target="$bin/ferretdb"

if [ -x "$target" ] && "$target" --version 2>/dev/null | grep -q "version: $version"; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "Go is required to build FerretDB: install Go 1.24 or newer (https://go.dev/doc/install)," >&2
  echo "or set MONGODB_URL to an existing MongoDB server." >&2
  exit 1
fi

module_dir=$(go mod download -json "github.com/FerretDB/FerretDB@$version" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
source="$root/.tools/src/ferretdb-$version"
rm -rf "$source"
mkdir -p "$source" "$bin"
cp -R "$module_dir/." "$source"
chmod -R u+w "$source"
echo "$version" > "$source/build/version/version.txt"
(cd "$source" && go build -trimpath -o "$target" ./cmd/ferretdb)
"$target" --version | head -n 1
