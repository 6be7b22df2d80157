// tlogcheck verifies stella's anchors with an independent implementation: the Go module
// ecosystem's golang.org/x/mod/sumdb/note (signed notes) and golang.org/x/mod/sumdb/tlog
// (tiles, inclusion and consistency proofs). Used by test/anchoring-standards.test.ts and
// by docs/verify-offline.md. Output: one JSON object on stdout; exit 1 when a check fails.
//
//	tlogcheck checkpoint  -vkey V -note FILE
//	tlogcheck inclusion   -vkey V -note FILE -url BASE [-token T] -index N -entry FILE
//	tlogcheck inclusion   -vkey V -note FILE -proof hex,hex,... -index N -entry FILE   (offline, e.g. an evidence pack)
//	tlogcheck consistency -vkey V -old FILE -new FILE [-url BASE -token T] [-proof hex,hex,...]
package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type checkpoint struct {
	Origin string
	Tree   tlog.Tree
}

// openCheckpoint verifies the note's signature under vkey and parses the C2SP checkpoint body.
func openCheckpoint(vkey string, file string) (checkpoint, error) {
	msg, err := os.ReadFile(file)
	if err != nil {
		return checkpoint{}, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return checkpoint{}, fmt.Errorf("vkey: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 {
		return checkpoint{}, errors.New("checkpoint has fewer than three lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return checkpoint{}, fmt.Errorf("checkpoint size %q", lines[1])
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		return checkpoint{}, fmt.Errorf("checkpoint root %q", lines[2])
	}
	var h tlog.Hash
	copy(h[:], raw)
	return checkpoint{Origin: lines[0], Tree: tlog.Tree{N: size, Hash: h}}, nil
}

// httpTiles reads C2SP tlog-tiles from stella's API. Paths come from tlog.Tile.Path
// ("tile/8/L/N[.p/W]") minus the height, which tlog-tiles fixes at 8.
type httpTiles struct {
	base, token string
}

func (r *httpTiles) Height() int { return 8 }

func (r *httpTiles) get(path string) ([]byte, int, error) {
	req, err := http.NewRequest("GET", strings.TrimSuffix(r.base, "/")+"/"+path, nil)
	if err != nil {
		return nil, 0, err
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return body, res.StatusCode, err
}

func (r *httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		path := "tlog/tile/" + strings.TrimPrefix(t.Path(), "tile/8/")
		body, status, err := r.get(path)
		if err != nil {
			return nil, err
		}
		if status != 200 {
			return nil, fmt.Errorf("GET %s: HTTP %d", path, status)
		}
		out[i] = body
	}
	return out, nil
}

func (r *httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// parseProof reads comma-separated hex hashes (an RFC 9162 proof as stella writes it).
func parseProof(s string) ([]tlog.Hash, error) {
	var p []tlog.Hash
	for _, h := range strings.Split(s, ",") {
		if h == "" {
			continue
		}
		raw, err := hex.DecodeString(h)
		if err != nil || len(raw) != tlog.HashSize {
			return nil, fmt.Errorf("proof element %q is not a 32-byte hex hash", h)
		}
		var x tlog.Hash
		copy(x[:], raw)
		p = append(p, x)
	}
	return p, nil
}

func emit(ok bool, v map[string]any) {
	v["ok"] = ok
	_ = json.NewEncoder(os.Stdout).Encode(v)
	if !ok {
		os.Exit(1)
	}
}

func fail(what string, err error) {
	emit(false, map[string]any{"check": what, "error": err.Error()})
}

func main() {
	if len(os.Args) < 2 {
		fail("usage", errors.New("tlogcheck checkpoint|inclusion|consistency ..."))
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	vkey := fs.String("vkey", "", "checkpoint verifier key (name+hash+base64)")
	noteFile := fs.String("note", "", "checkpoint note file")
	base := fs.String("url", "", "stella API base URL")
	token := fs.String("token", "", "bearer token")
	index := fs.Int64("index", -1, "leaf index")
	entry := fs.String("entry", "", "file with the leaf (entry) bytes")
	oldFile := fs.String("old", "", "older checkpoint note")
	newFile := fs.String("new", "", "newer checkpoint note")
	proofHex := fs.String("proof", "", "RFC 9162 consistency proof, comma-separated hex")
	_ = fs.Parse(os.Args[2:])
	tiles := &httpTiles{base: *base, token: *token}

	switch os.Args[1] {
	case "checkpoint":
		c, err := openCheckpoint(*vkey, *noteFile)
		if err != nil {
			fail("checkpoint", err)
		}
		emit(true, map[string]any{"check": "checkpoint", "origin": c.Origin, "size": c.Tree.N, "root": hex.EncodeToString(c.Tree.Hash[:])})
	case "inclusion":
		c, err := openCheckpoint(*vkey, *noteFile)
		if err != nil {
			fail("checkpoint", err)
		}
		data, err := os.ReadFile(*entry)
		if err != nil {
			fail("entry", err)
		}
		leaf := tlog.RecordHash(data)
		if *proofHex != "" || *base == "" {
			p, err := parseProof(*proofHex)
			if err != nil {
				fail("proof", err)
			}
			if err := tlog.CheckRecord(tlog.RecordProof(p), c.Tree.N, c.Tree.Hash, *index, leaf); err != nil {
				fail("inclusion", err)
			}
			emit(true, map[string]any{"check": "inclusion", "size": c.Tree.N, "index": *index, "recordHash": hex.EncodeToString(leaf[:]), "proofLength": len(p), "source": "proof"})
			return
		}
		// TileHashReader checks every tile it reads against the checkpoint's root.
		hr := tlog.TileHashReader(c.Tree, tiles)
		p, err := tlog.ProveRecord(c.Tree.N, *index, hr)
		if err != nil {
			fail("inclusion", err)
		}
		if err := tlog.CheckRecord(p, c.Tree.N, c.Tree.Hash, *index, leaf); err != nil {
			fail("inclusion", err)
		}
		// The leaf hash tile must hold the same record hash at that index.
		got, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, *index)})
		if err != nil || got[0] != leaf {
			fail("inclusion", fmt.Errorf("tile hash at %d is not the record hash of the entry (%v)", *index, err))
		}
		emit(true, map[string]any{"check": "inclusion", "size": c.Tree.N, "index": *index, "recordHash": hex.EncodeToString(leaf[:]), "proofLength": len(p)})
	case "consistency":
		o, err := openCheckpoint(*vkey, *oldFile)
		if err != nil {
			fail("old checkpoint", err)
		}
		n, err := openCheckpoint(*vkey, *newFile)
		if err != nil {
			fail("new checkpoint", err)
		}
		out := map[string]any{"check": "consistency", "old": o.Tree.N, "new": n.Tree.N}
		if *proofHex != "" || o.Tree.N == n.Tree.N {
			p, err := parseProof(*proofHex)
			if err != nil {
				fail("proof", err)
			}
			if err := tlog.CheckTree(tlog.TreeProof(p), n.Tree.N, n.Tree.Hash, o.Tree.N, o.Tree.Hash); err != nil {
				fail("stella proof", err)
			}
			out["stellaProof"] = "verified"
		}
		if *base != "" {
			p, err := tlog.ProveTree(n.Tree.N, o.Tree.N, tlog.TileHashReader(n.Tree, tiles))
			if err != nil {
				fail("tiles proof", err)
			}
			if err := tlog.CheckTree(p, n.Tree.N, n.Tree.Hash, o.Tree.N, o.Tree.Hash); err != nil {
				fail("tiles proof", err)
			}
			out["tilesProof"] = "verified"
		}
		emit(true, out)
	default:
		fail("usage", fmt.Errorf("unknown command %q", os.Args[1]))
	}
}
