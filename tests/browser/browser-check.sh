#!/bin/sh
# $BROWSER-style wrapper: BROWSER=/path/to/tests/browser/browser-check.sh makes an app that
# "opens a URL in the browser" run the headless JupyterLab check of browser-check.mjs instead.
exec node "$(dirname "$0")/browser-check.mjs" "$@"
