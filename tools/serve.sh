#!/usr/bin/env bash
# Serve the scenario explorer quietly, then print the one URL to open.
#
#   tools/serve.sh lab VENV IP PORT   JupyterLab on notebooks/, opening on 01_scenario_explorer.ipynb
#   tools/serve.sh app VENV IP PORT   the code-free app: Voila serving app/explorer.ipynb
#
# `make lab` / `make app` call this (LAB_IP/LAB_PORT, APP_IP/APP_PORT). The
# server's own log goes to VENV/<mode>.log; the terminal shows three lines
# ending with the URL. JupyterLab uses the project's settings overrides
# (jupyter/overrides.json, copied into the venv by make): no news or update
# popups, no autosave, no widget state written, so using a notebook never
# changes a committed file (save explicitly only if you mean it). Ctrl-C stops
# the server. Not for clinical use.
set -euo pipefail

mode="$1"; venv="$2"; ip="$3"; port="$4"
log="$venv/$mode.log"
py="$venv/bin/python"
case "$mode" in
  lab)
    token="$("$py" -c 'import secrets; print(secrets.token_hex(16))')"
    url="http://$ip:$port/lab/tree/01_scenario_explorer.ipynb?token=$token"
    probe="http://$ip:$port/api/status?token=$token"
    cmd=("$venv/bin/jupyter" lab --no-browser "--ServerApp.ip=$ip" "--ServerApp.port=$port"
         --ServerApp.port_retries=0 --ServerApp.root_dir=notebooks "--IdentityProvider.token=$token"
         --ServerApp.log_level=WARN --LabApp.news_url=
         '--ContentsManager.hide_globs=["__pycache__","*.pyc","*.pyo",".DS_Store","*~","*.sh","*.cfg"]')
    if [ "$(id -u)" = 0 ]; then cmd+=(--allow-root); fi  # Jupyter refuses root otherwise (containers)
    what="JupyterLab"
    ;;
  app)
    url="http://$ip:$port/"
    probe="$url"
    cmd=("$venv/bin/voila" app/explorer.ipynb --no-browser "--Voila.ip=$ip" "--port=$port"
         --Voila.log_level=WARN --VoilaConfiguration.show_tracebacks=False --theme=light)
    what="the explorer app (Voila)"
    ;;
  *)
    echo "serve.sh: got mode '$mode'; allowed: lab, app" >&2; exit 2 ;;
esac

"${cmd[@]}" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> starting $what on $ip:$port (log: $log). Not for clinical use."
for _ in $(seq 1 240); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "$what did not start (is port $port in use? choose another with ${mode^^}_PORT=...):" >&2
    tail -n 15 "$log" >&2
    exit 1
  fi
  if "$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$probe" 2>/dev/null; then
    echo "    stop with Ctrl-C; open:"
    echo "$url"
    wait "$pid"
    exit $?
  fi
  sleep 0.5
done
echo "$what did not answer within 120 s; see $log" >&2
exit 1
