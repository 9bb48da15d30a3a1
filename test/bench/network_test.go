package bench

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestMasqueradeRules(t *testing.T) {
	save := `-P POSTROUTING ACCEPT
-A POSTROUTING -s 10.201.0.5/32 -m comment --comment "name: \"bbench-berth\" id: \"abc\"" -j CNI-1a2b3c
-A POSTROUTING -s 10.88.0.5/32 -m comment --comment "name: \"other\" id: \"def\"" -j CNI-ffff
-A POSTROUTING -s 10.201.0.6/32 -m comment --comment "name: \"bbench-berth-2\" id: \"x\"" -j CNI-9999
`
	rules, chains := MasqueradeRules(save, "bbench-berth")
	want := [][]string{{"-A", "POSTROUTING", "-s", "10.201.0.5/32", "-m", "comment", "--comment", `name: "bbench-berth" id: "abc"`, "-j", "CNI-1a2b3c"}}
	if !reflect.DeepEqual(rules, want) {
		t.Errorf("rules = %q, want %q", rules, want)
	}
	if !reflect.DeepEqual(chains, []string{"CNI-1a2b3c"}) {
		t.Errorf("chains = %v", chains)
	}
}

func TestConflist(t *testing.T) {
	data, err := Conflist("bbench-cd24", "10.202.0.0/22", "/tmp/ipam")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Name    string
		Plugins []map[string]any
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "bbench-cd24" || len(c.Plugins) != 2 || c.Plugins[0]["bridge"] != "bbench-cd24" || c.Plugins[1]["type"] != "portmap" {
		t.Errorf("conflist = %s", data)
	}
}
