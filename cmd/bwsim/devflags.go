package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bwsim/bwsim/config"
	"github.com/bwsim/bwsim/hwmodel"
)

// addDeviceFlags registers the flags that change the device catalog:
// --config, --device-file, --set and --no-host-file. Register them on
// PersistentFlags of a command with subcommands (devices) so that the
// subcommands see them.
func addDeviceFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "config `FILE` (YAML); its devices: section adds or overrides devices")
	fs.StringArray("device-file", nil, "device `FILE` (YAML) adding or overriding devices; repeatable, applied in order")
	fs.StringArray("set", nil, "override one key, `KEY=VALUE` (value read as YAML); repeatable,\ne.g. devices.h100-sxm.memory_levels.hbm.achievable_bandwidth=3e12")
	fs.Bool("no-host-file", false, "ignore the host file written by bwsim calibrate")
}

// deviceLoadOptions reads the flags addDeviceFlags registered.
func deviceLoadOptions(cmd *cobra.Command) (config.LoadOptions, error) {
	fs := cmd.Flags()
	var o config.LoadOptions
	var err error
	if o.ConfigFile, err = fs.GetString("config"); err != nil {
		return o, err
	}
	if o.DeviceFiles, err = fs.GetStringArray("device-file"); err != nil {
		return o, err
	}
	if o.SkipHostFile, err = fs.GetBool("no-host-file"); err != nil {
		return o, err
	}
	sets, err := fs.GetStringArray("set")
	if err != nil {
		return o, err
	}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return o, badInput("--set %q: want KEY=VALUE, e.g. devices.h100-sxm.memory_levels.hbm.achievable_bandwidth=3e12", kv)
		}
		if o.Set == nil {
			o.Set = map[string]string{}
		}
		o.Set[strings.TrimSpace(k)] = v
	}
	return o, nil
}

// loadCatalog loads the device catalog with the overrides of cmd's device
// flags. Problems with the user's files, variables or flags are bad input
// (exit code 2).
func loadCatalog(cmd *cobra.Command) (*hwmodel.Catalog, error) {
	o, err := deviceLoadOptions(cmd)
	if err != nil {
		return nil, err
	}
	c, err := config.LoadDevices(o)
	if err != nil {
		return nil, asUsage(err)
	}
	return c, nil
}
