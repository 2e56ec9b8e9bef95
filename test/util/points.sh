# Sourced by test/fault-inject and test/crash-every-point, after lib.sh:
# the list of crash and fault points as lib/crashpoint/points.go has it
# (one Go file, which a unit test keeps in step with the code), and a
# snapshot of a directory tree to compare before and after a fault.

# points KIND...: the names of the points of those kinds (step, fileop,
# resume, write, undo), in the list's order.
points() {
  local kinds=" $* "
  sed -n 's/^\t{"\([a-z0-9-]*\)", \(Step\|FileOp\|Resume\|Write\|Undo\), .*/\1 \2/p' "$ROOT/lib/crashpoint/points.go" |
    while read -r name kind; do
      kind=$(echo "$kind" | tr 'A-Z' 'a-z')
      case $kinds in *" $kind "*) echo "$name";; esac
    done
}
[ "$(points step fileop resume write undo | wc -l)" -gt 50 ] || fail "cannot read the points from lib/crashpoint/points.go"

# snap DIR: every entry under DIR with its type, and each file's sha1:
# two snaps are equal when the tree is byte-identical.
snap() {
  (cd "$1" && find . -printf '%y %p\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r sha1sum)
}
