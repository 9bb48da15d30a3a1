# bash completion for berth                                -*- shell-script -*-
# Installed by `make install` to $(PREFIX)/share/bash-completion/completions/berth,
# where bash-completion loads it on demand; plain bash can `source` it too,
# since it needs none of bash-completion's helpers.
#
# Every subcommand takes every flag (they share the configuration), so the
# flags complete after any subcommand. The list must match `berth --help`;
# a unit test in check/ keeps it so.

_berth() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	# bash splits "--flag=value" at "=": complete the value like "--flag value".
	if [[ $cur == = ]]; then
		cur=
	elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
		prev=${COMP_WORDS[COMP_CWORD - 2]}
	fi

	local subcommands="check config status version"
	local flags="--auth-file --cgroup-manager --cni-config-dir --cni-plugin-dir
		--config --config-dir --conmon --default-runtime --enable-nri --listen --log-format
		--log-level --metrics-address --nri-socket --pause-image --profiling-socket
		--pull-progress-timeout --registries-conf --root --run-dir --runroot --signature-policy
		--state-dir --storage-driver --stream-address --stream-port --help"

	case $prev in
	--config | --registries-conf | --signature-policy | --auth-file | --conmon | --listen | --profiling-socket | --nri-socket)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--config-dir | --root | --runroot | --state-dir | --run-dir | --cni-config-dir | --cni-plugin-dir)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--log-level)
		COMPREPLY=($(compgen -W "debug info warn error" -- "$cur"))
		return
		;;
	--log-format)
		COMPREPLY=($(compgen -W "text json" -- "$cur"))
		return
		;;
	--cgroup-manager)
		COMPREPLY=($(compgen -W "cgroupfs systemd" -- "$cur"))
		return
		;;
	--storage-driver)
		COMPREPLY=($(compgen -W "overlay vfs" -- "$cur"))
		return
		;;
	--default-runtime)
		COMPREPLY=($(compgen -W "crun runc" -- "$cur"))
		return
		;;
	--stream-address | --stream-port | --metrics-address | --pause-image | --pull-progress-timeout)
		COMPREPLY=() # free-form values
		return
		;;
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
		return
	fi
	# berth takes its subcommand as the first argument only, before flags.
	if ((COMP_CWORD == 1)); then
		COMPREPLY=($(compgen -W "$subcommands" -- "$cur"))
	else
		COMPREPLY=()
	fi
} &&
	complete -F _berth berth

# ex: filetype=sh
