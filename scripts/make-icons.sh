#!/usr/bin/env bash
# Regenerates Porthole's app icons and tray icons (idle / active / error) in icons/ with
# ImageMagick's drawing primitives (no SVG delegate needed). The PNGs are committed, so
# building never needs this script; run it after changing the drawing below.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's ImageMagick 6; a stand-in `convert` may shadow it on PATH.
CONVERT=/usr/bin/convert
[ -x "$CONVERT" ] || CONVERT=$(command -v convert)
if ! "$CONVERT" -version 2>/dev/null | grep -q ImageMagick; then
  echo "make-icons: ImageMagick is required (apt-get install imagemagick)" >&2
  exit 1
fi

ACCENT="#2563eb"
ACCENT_DARK="#1e40af"
GLASS="#dbeafe"
OUT=icons
mkdir -p "$OUT"

# The app icon at 1024 px: a rounded tile in the accent colour holding a porthole (a thick
# white ring with eight bolts around a pale glass pane and a highlight).
app_icon() {
  local size=1024 c=512
  local bolts=()
  for i in 0 1 2 3 4 5 6 7; do
    local x y
    x=$(python3 -c "import math;print(round($c+330*math.cos($i*math.pi/4)))")
    y=$(python3 -c "import math;print(round($c+330*math.sin($i*math.pi/4)))")
    bolts+=(-draw "circle $x,$y $((x + 26)),$y")
  done
  "$CONVERT" -size ${size}x${size} xc:none \
    -fill "$ACCENT" -draw "roundrectangle 64,64 960,960 200,200" \
    -fill "$ACCENT_DARK" -draw "circle $c,$((c + 16)) $c,$((c + 16 + 372))" \
    -fill white -draw "circle $c,$c $c,$((c + 372))" \
    -fill "$ACCENT" "${bolts[@]}" \
    -fill "$GLASS" -draw "circle $c,$c $c,$((c + 262))" \
    -fill "#93c5fd" -draw "circle $c,$c $c,$((c + 200))" \
    -fill "#eff6ff" -draw "ellipse $((c - 80)),$((c - 90)) 70,44 0,360" \
    "$OUT/icon.png"
  for s in 32 64 128 256; do
    "$CONVERT" "$OUT/icon.png" -resize ${s}x${s} "$OUT/${s}x${s}.png"
  done
  "$CONVERT" "$OUT/icon.png" -resize 256x256 "$OUT/128x128@2x.png"
  "$CONVERT" "$OUT/icon.png" -define icon:auto-resize=256,128,64,48,32,16 "$OUT/icon.ico"
}

# Tray icons at 64 px (the tray scales them): idle is a grey outline porthole, active a
# filled accent one, error the outline with a red mark.
tray_icons() {
  local s=64 c=32
  "$CONVERT" -size ${s}x${s} xc:none \
    -fill none -stroke "#8b95a7" -strokewidth 7 -draw "circle $c,$c $c,$((c + 24))" \
    -stroke none -fill "#8b95a7" -draw "circle $c,$c $c,$((c + 9))" \
    "$OUT/tray-idle.png"
  "$CONVERT" -size ${s}x${s} xc:none \
    -fill "$ACCENT" -stroke none -draw "circle $c,$c $c,$((c + 29))" \
    -fill white -draw "circle $c,$c $c,$((c + 19))" \
    -fill "$ACCENT" -draw "circle $c,$c $c,$((c + 12))" \
    "$OUT/tray-active.png"
  "$CONVERT" -size ${s}x${s} xc:none \
    -fill none -stroke "#8b95a7" -strokewidth 7 -draw "circle $c,$c $c,$((c + 24))" \
    -stroke white -strokewidth 4 -fill "#dc2626" -draw "circle 46,46 46,62" \
    -stroke none -fill white -draw "rectangle 43,36 49,49" -draw "rectangle 43,52 49,56" \
    "$OUT/tray-error.png"
}

app_icon
tray_icons
echo "make-icons: wrote $(ls "$OUT"/*.png "$OUT"/*.ico | wc -l) files to $OUT/"
