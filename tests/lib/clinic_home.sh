# shellcheck shell=bash
# A ready clinic home for `agora serve` tests: an operator key, a vendor key, the example
# plugins packed, signed, certified into a catalog with their manifest's pricing model, the home
# initialised trusting the operator, the catalog synced and the plugins installed.
#
#   . "$LIB/clinic_home.sh"
#   clinic_home AGORA WORKDIR HOME EXAMPLES_DIR APP...   # APP: threshold, stats, hello, ...
#
# Prices (minor units, EUR, vendor share 70 %): per-study 250, per-series 10, per-instance 1;
# an app whose manifest says free stays free. Output of the commands goes to WORKDIR/home.log.

clinic_home() {
    local agora w=$2 home=$3 ex app model
    agora=$(realpath "$1") ex=$(realpath "$4")
    shift 4
    mkdir -p "$w"
    (
        set -e
        cd "$w"
        "$agora" keygen --out keys/op
        "$agora" keygen --out keys/vendor
        for app in "$@"; do
            "$agora" pack --manifest "$ex/$app.manifest.json" --plugin "$ex/$app.so" \
                --sign keys/vendor.key -o "$app.agora"
            model=$(sed -n 's/.*"model": *"\([a-z-]*\)".*/\1/p' "$ex/$app.manifest.json" | head -1)
            case "$model" in
            free | "")
                "$agora" certify "$app.agora" --catalog cat --key keys/op.key \
                    --vendor-key keys/vendor.pub --model free
                ;;
            *)
                local price=1
                [ "$model" = per-study ] && price=250
                [ "$model" = per-series ] && price=10
                "$agora" certify "$app.agora" --catalog cat --key keys/op.key \
                    --vendor-key keys/vendor.pub --model "$model" --price $price \
                    --currency EUR --vendor-share-bps 7000
                ;;
            esac
        done
        "$agora" init --home "$home" --trust keys/op.pub
        "$agora" sync cat --home "$home"
        for app in "$@"; do
            id=$(sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' "$ex/$app.manifest.json" | head -1)
            "$agora" install "$id" --home "$home"
        done
    ) >>"$w/home.log" 2>&1 || {
        echo "clinic_home: setting up the clinic home failed; log:" >&2
        tail -20 "$w/home.log" >&2
        return 1
    }
}
