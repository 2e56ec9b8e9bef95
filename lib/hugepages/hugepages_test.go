package hugepages

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// The heap mapping holding an object is advised for huge pages: "hg" in
// its VmFlags.
func TestAdviseHugePages(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skip("no transparent huge pages here")
	}
	big := make([]byte, 8<<20)
	p := uint64(uintptr(unsafe.Pointer(&big[0])))
	Advise(unsafe.Pointer(&big[0]))
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in, found := false, false
	for sc.Scan() {
		l := sc.Text()
		if v, ok := strings.CutPrefix(l, "VmFlags:"); ok {
			if in {
				found = true
				if !strings.Contains(v+" ", " hg ") {
					t.Errorf("the heap mapping is not advised: VmFlags:%s", v)
				}
			}
			continue
		}
		// A mapping's first line: "start-end perms ...".
		if lo, hi, ok := strings.Cut(strings.Fields(l + " x")[0], "-"); ok {
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				in = p >= a && p < b
			}
		}
	}
	if !found {
		t.Error("no mapping holds the object")
	}
	_ = big[0]
}
