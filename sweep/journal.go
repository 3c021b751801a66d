package sweep

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// JournalName is the file in the output directory that records finished
// points, one JSON line each, appended and synced as each point finishes.
// It is what --resume reads.
const JournalName = "journal.jsonl"

// journalVersion 2: keys spell every method parameter out and include
// steps.
const journalVersion = 2

// journalHeader is the first line of a journal.
type journalHeader struct {
	Journal int    `json:"bwsim_sweep_journal"`
	Shard   string `json:"shard,omitempty"`
}

// record is one finished point: its rows on every device and its traffic.
type record struct {
	Key string `json:"key"`
	// Devices maps each device the point was priced on to its fingerprint.
	Devices map[string]string `json:"devices"`
	Rows    []Row             `json:"rows"`
	Traffic Traffic           `json:"traffic"`
}

// journal appends records to a file, one synced line each.
type journal struct {
	mu sync.Mutex
	f  *os.File
}

// openJournal opens path for appending. With resume it first reads the
// records already there (dropping a torn last line, the trace of a crash
// mid-write); without it, or when the file is missing, it starts a new one.
func openJournal(path, shard string, resume bool) (*journal, []record, error) {
	var recs []record
	if resume {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			var good int64
			recs, good, err = parseJournal(data)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", path, err)
			}
			if good > 0 {
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					return nil, nil, err
				}
				if err := f.Truncate(good); err != nil {
					f.Close()
					return nil, nil, err
				}
				if _, err := f.Seek(good, io.SeekStart); err != nil {
					f.Close()
					return nil, nil, err
				}
				return &journal{f: f}, recs, nil
			}
		case !errors.Is(err, os.ErrNotExist):
			return nil, nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, nil, err
	}
	j := &journal{f: f}
	if err := j.writeLine(journalHeader{Journal: journalVersion, Shard: shard}); err != nil {
		f.Close()
		return nil, nil, err
	}
	return j, nil, nil
}

// parseJournal reads a journal's records and returns the length of its
// well-formed prefix. A last line without its newline is a torn write and
// is dropped; any other bad line is an error.
func parseJournal(data []byte) ([]record, int64, error) {
	var recs []record
	var off int64
	line := 0
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // torn last line
		}
		text := data[:i]
		line++
		if line == 1 {
			var h journalHeader
			if err := json.Unmarshal(text, &h); err != nil || h.Journal == 0 {
				return nil, 0, fmt.Errorf("line 1: not a bwsim sweep journal")
			}
			if h.Journal != journalVersion {
				return nil, 0, fmt.Errorf("journal version %d, this bwsim reads version %d: run without --resume to start over", h.Journal, journalVersion)
			}
		} else {
			var r record
			if err := json.Unmarshal(text, &r); err != nil || r.Key == "" {
				return nil, 0, fmt.Errorf("line %d: corrupt record", line)
			}
			recs = append(recs, r)
		}
		off += int64(i + 1)
		data = data[i+1:]
	}
	return recs, off, nil
}

func (j *journal) writeLine(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	w := bufio.NewWriter(j.f)
	if _, err := w.Write(b); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return j.f.Sync()
}

// append writes one record durably.
func (j *journal) append(r record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.writeLine(r)
}

func (j *journal) close() error { return j.f.Close() }
