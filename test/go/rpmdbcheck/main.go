// rpmdbcheck lists the packages of an rpm database with anchore/go-rpmdb (the reader syft uses),
// one JSON object per package, so stella's own rpmdb reader can be compared with an independent
// implementation on real databases (SQLite, NDB and Berkeley DB).
//
// Usage: rpmdbcheck <rpmdb file>
package main

import (
	"encoding/json"
	"fmt"
	"os"

	rpmdb "github.com/anchore/go-rpmdb/pkg"
	// go-rpmdb reads SQLite databases through database/sql; this is the pure-Go driver it is tested with.
	_ "github.com/glebarez/go-sqlite"
)

type pkg struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Release string `json:"release"`
	Epoch   *int   `json:"epoch,omitempty"`
	Arch    string `json:"arch"`
	License string `json:"license"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: rpmdbcheck <rpmdb file>")
		os.Exit(2)
	}
	db, err := rpmdb.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(1)
	}
	defer db.Close()
	list, err := db.ListPackages()
	if err != nil {
		fmt.Fprintln(os.Stderr, "list:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, p := range list {
		if err := enc.Encode(pkg{p.Name, p.Version, p.Release, p.Epoch, p.Arch, p.License}); err != nil {
			os.Exit(1)
		}
	}
}
