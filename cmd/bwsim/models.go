package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bwsim/bwsim/config"
	"github.com/bwsim/bwsim/internal/units"
	"github.com/bwsim/bwsim/models"
)

func init() { extraCommands = append(extraCommands, newModelsCmd) }

func newModelsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "models",
		Short: "list the model catalog",
		Long: `models lists the language models bwsim plan knows: the embedded catalog
(Llama 2 and 3, Mistral, Gemma, Pythia) with the models: section of the
--config file and --set models.NAME.KEY=VALUE overrides. Every shape comes
from the model's Hugging Face config.json (bwsim models show NAME prints the
source). "bwsim models import config.json" turns a Hugging Face config into
a models: section for your --config file.`,
		Example: `  bwsim models
  bwsim models --json
  bwsim models show llama-2-70b
  bwsim models import ~/Llama-2-7b-hf/config.json --name my-llama >> bwsim.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadModels(cmd)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), c.Models())
			}
			return printModels(cmd.OutOrStdout(), c.Models())
		},
	}
	addDeviceFlags(cmd.PersistentFlags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array with every field of every model")
	cmd.AddCommand(newModelsShowCmd(), newModelsImportCmd())
	return cmd
}

func newModelsShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "print one model with its source",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadModels(cmd)
			if err != nil {
				return err
			}
			m, err := c.Get(args[0])
			if err != nil {
				return badInput("%v", err)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), m)
			}
			_, err = cmd.OutOrStdout().Write(models.EncodeYAML(m))
			if err == nil {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "# loaded from %s; %d parameters (%.2fB); %s of KV cache per token in %s\n",
					m.Origin, m.Params, float64(m.Params)/1e9, units.Bytes(m.KVBytesPerToken()), m.KVDType)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the model as JSON")
	return cmd
}

func newModelsImportCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "import CONFIG.JSON",
		Short: "turn a Hugging Face config.json into a models: section",
		Long: `import reads a Hugging Face config.json (llama, mistral, gemma or gpt_neox
model types) strictly and prints the model as a models: section to add to
your --config file. The parameter count is computed from the shapes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := readModelFile(args[0], name)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(models.EncodeYAML(m))
			return err
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "model name (default: from the file's directory or name)")
	return cmd
}

// loadModels loads the model catalog with cmd's --config and --set.
func loadModels(cmd *cobra.Command) (*models.Catalog, error) {
	o, err := deviceLoadOptions(cmd)
	if err != nil {
		return nil, err
	}
	c, err := config.LoadModels(o)
	if err != nil {
		return nil, asUsage(err)
	}
	return c, nil
}

// readModelFile imports a Hugging Face config.json as a model named name,
// or after the file when name is empty.
func readModelFile(path, name string) (*models.Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, asUsage(err)
	}
	if name == "" {
		name = nameFromPath(path)
	}
	m, err := models.ParseHFConfig(data, name)
	if err != nil {
		return nil, badInput("%s: %v", path, err)
	}
	m.Source = "Hugging Face config.json " + path
	m.Origin = path
	return m, nil
}

var nonName = regexp.MustCompile(`[^a-z0-9._-]+`)

// nameFromPath makes a model name from a config file's path: its directory
// for a file called config.json (~/Llama-2-7b-hf/config.json → llama-2-7b-hf),
// else its base name without extension.
func nameFromPath(path string) string {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if base == "config" {
		if dir := filepath.Base(filepath.Dir(path)); dir != "." && dir != string(filepath.Separator) {
			base = dir
		}
	}
	n := strings.Trim(nonName.ReplaceAllString(strings.ToLower(base), "-"), "-._")
	if n == "" || n[0] < 'a' || n[0] > 'z' {
		n = "model-" + n
	}
	return n
}

func printModels(w io.Writer, ms []*models.Model) error {
	// Names are padded to one width so that they read left-aligned in a
	// right-aligned table.
	width := len("model")
	for _, m := range ms {
		width = max(width, len(m.Name))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tparams\tlayers\td_model\theads\tkv heads\thead dim\tffn\tvocab\tweights\tKV/token\twindow\tmax seq\t\n", width, "model")
	for _, m := range ms {
		window := "-"
		if m.SlidingWindow > 0 {
			window = units.Count(float64(m.SlidingWindow))
		}
		maxSeq := "?"
		if m.MaxSeq > 0 {
			maxSeq = units.Count(float64(m.MaxSeq))
		}
		wb, _ := models.DTypeBytes(m.WeightDType)
		fmt.Fprintf(tw, "%-*s\t%.2fB\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s %s\t%s %s\t%s\t%s\t\n",
			width, m.Name, float64(m.Params)/1e9, m.Layers, m.DModel, m.Heads, m.KVHeads, m.HeadDim, m.FFNDim, m.Vocab,
			units.Bytes(float64(m.Params)*wb), m.WeightDType,
			units.Bytes(m.KVBytesPerToken()), m.KVDType, window, maxSeq)
	}
	return tw.Flush()
}
