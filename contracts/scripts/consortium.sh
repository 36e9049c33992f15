#!/usr/bin/env bash
# consortium.sh: deploy and drive the ConsortiumApp contract (dstack app-auth, k of n).
# Offline: uses forge/cast from the repository's node_modules and the solc-js wrapper.
#
#   consortium.sh deploy  --rpc URL --key HEX --owners a,b,c --threshold K
#                         --compose-hash 0x.. --epsilon-milli N --min-group N
#                         --output-type S --privacy-unit S      -> prints the address
#   consortium.sh approve --rpc URL --key HEX --app ADDR
#   consortium.sh revoke  --rpc URL --key HEX --app ADDR [--reason S]
#   consortium.sh state   --rpc URL --app ADDR                  -> prints JSON
#
# dstack's KMS contract (DstackKms: its address is the KMS's kms_contract_addr):
#   consortium.sh kms-register --rpc URL --key HEX --kms ADDR --app ADDR
#                         register the consortium as an app of that KMS
#   consortium.sh kms-root  --rpc URL --kms ADDR                -> the KMS root public key (hex)
#   consortium.sh kms-state --rpc URL --kms ADDR --app ADDR [--os-image 0x..] -> prints JSON
#
# Only results go to stdout; progress and errors go to stderr. Exit status is nonzero
# on any failure.
set -euo pipefail

here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
cdir="$(cd "$here/.." && pwd)"           # contracts/
root="$(cd "$cdir/.." && pwd)"           # repository root
FORGE="${FORGE:-$root/node_modules/.bin/forge}"
CAST="${CAST:-$root/node_modules/.bin/cast}"
ARTIFACT="$cdir/out/ConsortiumApp.sol/ConsortiumApp.json"

log() { printf 'consortium.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[[ -x "$FORGE" ]] || die "forge not found at $FORGE (npm install in $root?)"
[[ -x "$CAST" ]] || die "cast not found at $CAST"

# Foundry writes a cache under $HOME; keep it usable for root and for sandboxed users.
export FOUNDRY_OFFLINE=true

cmd="${1:-}"
[[ -n "$cmd" ]] || usage
shift

rpc="" key="" app="" owners="" threshold="" compose="" eps="" mingroup="" outtype="" unit="" kms="" osimage=""
reason="revoked by owner"
while [[ $# -gt 0 ]]; do
    opt="$1"
    [[ $# -ge 2 ]] || die "option $opt needs a value"
    val="$2"
    shift 2
    case "$opt" in
        --rpc) rpc="$val" ;;
        --key) key="$val" ;;
        --app) app="$val" ;;
        --owners) owners="$val" ;;
        --threshold) threshold="$val" ;;
        --compose-hash) compose="$val" ;;
        --epsilon-milli) eps="$val" ;;
        --min-group) mingroup="$val" ;;
        --output-type) outtype="$val" ;;
        --privacy-unit) unit="$val" ;;
        --reason) reason="$val" ;;
        --kms) kms="$val" ;;
        --os-image) osimage="$val" ;;
        *) die "unknown option $opt" ;;
    esac
done

need() { # need NAME VALUE
    [[ -n "$2" ]] || die "$cmd: --$1 is required"
}
is_addr() { [[ "$1" =~ ^0x[0-9a-fA-F]{40}$ ]]; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

# Normalise a private key to 0x-prefixed hex.
normkey() {
    local k="${1#0x}"
    [[ "$k" =~ ^[0-9a-fA-F]{64}$ ]] || die "--key must be 32 bytes of hex"
    printf '0x%s' "$k"
}

# Compile once; forge skips the work when out/ is up to date.
build() {
    log "building contracts in $cdir"
    (cd "$cdir" && "$FORGE" build --offline >&2) || die "forge build failed"
    [[ -f "$ARTIFACT" ]] || die "artifact $ARTIFACT missing after build"
}

# Send a transaction and fail unless it was mined with status 1.
send_tx() { # send_tx ADDR SIG [ARGS...]
    local to="$1" sig="$2"
    shift 2
    local out status
    out="$("$CAST" send --rpc-url "$rpc" --private-key "$key" --json "$to" "$sig" "$@" 2>&1)" ||
        die "$cmd failed: $(printf '%s' "$out" | tail -n 3)"
    status="$(printf '%s' "$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{process.stdout.write(String(JSON.parse(s).status))}catch(e){process.stdout.write("?")}})')"
    [[ "$status" == "0x1" || "$status" == "1" ]] || die "$cmd transaction failed (status $status): $out"
    log "$cmd: mined $(printf '%s' "$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{process.stdout.write(JSON.parse(s).transactionHash)}catch(e){}})')"
}

call() { # call SIG [ARGS...] -> decoded output
    "$CAST" call --rpc-url "$rpc" "$app" "$@" || die "eth_call $1 on $app failed"
}

case "$cmd" in
deploy)
    need rpc "$rpc"; need key "$key"; need owners "$owners"; need threshold "$threshold"
    need compose-hash "$compose"; need epsilon-milli "$eps"; need min-group "$mingroup"
    need output-type "$outtype"; need privacy-unit "$unit"
    key="$(normkey "$key")"
    IFS=',' read -r -a olist <<<"$owners"
    for o in "${olist[@]}"; do is_addr "$o" || die "owner '$o' is not a 0x address"; done
    is_uint "$threshold" || die "--threshold must be a non-negative integer"
    is_uint "$eps" || die "--epsilon-milli must be a non-negative integer"
    is_uint "$mingroup" || die "--min-group must be a non-negative integer"
    [[ "$compose" =~ ^0x[0-9a-fA-F]{64}$ ]] || die "--compose-hash must be 0x + 64 hex digits"
    for s in "$outtype" "$unit"; do
        [[ "$s" =~ ^[A-Za-z0-9_.:/-]+$ ]] || die "policy string '$s' may contain only [A-Za-z0-9_.:/-]"
    done
    build
    bytecode="$(node -e 'const a=require(process.argv[1]);const b=a.bytecode.object||a.bytecode;process.stdout.write(b.startsWith("0x")?b:"0x"+b)' "$ARTIFACT")" ||
        die "cannot read bytecode from $ARTIFACT"
    args="$("$CAST" abi-encode 'constructor(address[],uint256,bytes32,(uint32,uint32,string,string))' \
        "[$owners]" "$threshold" "$compose" "($eps,$mingroup,$outtype,$unit)")" ||
        die "cannot ABI-encode constructor arguments"
    log "deploying ConsortiumApp: ${#olist[@]} owners, threshold $threshold, compose-hash $compose"
    out="$("$CAST" send --rpc-url "$rpc" --private-key "$key" --json --create "${bytecode}${args#0x}" 2>&1)" ||
        die "deploy failed: $(printf '%s' "$out" | tail -n 3)"
    addr="$(printf '%s' "$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);if(String(r.status)!=="0x1"&&String(r.status)!=="1"||!r.contractAddress)process.exit(1);process.stdout.write(r.contractAddress)})')" ||
        die "deploy transaction failed: $out"
    addr="$("$CAST" to-check-sum-address "$addr")"
    code="$("$CAST" code --rpc-url "$rpc" "$addr")" || die "cannot read code at $addr"
    [[ "$code" != "0x" ]] || die "no code at $addr after deployment"
    log "deployed at $addr"
    printf '%s\n' "$addr"
    ;;
approve)
    need rpc "$rpc"; need key "$key"; need app "$app"
    key="$(normkey "$key")"; is_addr "$app" || die "--app must be a 0x address"
    send_tx "$app" 'approve()'
    ;;
revoke)
    need rpc "$rpc"; need key "$key"; need app "$app"
    key="$(normkey "$key")"; is_addr "$app" || die "--app must be a 0x address"
    send_tx "$app" 'revoke(string)' "$reason"
    ;;
state)
    need rpc "$rpc"; need app "$app"
    is_addr "$app" || die "--app must be a 0x address"
    st="$(call 'state()(uint256,uint256,bool,bytes32)')"
    ap="$(call 'approvers()(address[])')"
    po="$(call 'policy()(uint32,uint32,string,string)')"
    rb="$(call 'revokedBy()(address)')"
    rr="$(call 'revokeReason()(string)')"
    ow="$(call 'owners()(address[])')"
    node -e '
        const [st, ap, po, rb, rr, ow, app] = process.argv.slice(1);
        const lines = (s) => s.split("\n").map((x) => x.trim()).filter((x) => x.length);
        const num = (s) => Number(s.split(" ")[0]);
        const arr = (s) => { const t = s.trim().replace(/^\[|\]$/g, "").trim(); return t ? t.split(/,\s*/) : []; };
        const str = (s) => { s = s.trim(); return s.startsWith("\"") ? JSON.parse(s) : s; };
        const S = lines(st), P = lines(po);
        process.stdout.write(JSON.stringify({
            app, approvals: num(S[0]), threshold: num(S[1]), revoked: S[2] === "true",
            composeHash: S[3], approvers: arr(ap), owners: arr(ow),
            revokedBy: rb.trim(), revokeReason: str(rr),
            policy: { epsilonMilli: num(P[0]), minGroupSize: num(P[1]),
                      outputType: str(P[2]), privacyUnit: str(P[3]) },
        }) + "\n");
    ' "$st" "$ap" "$po" "$rb" "$rr" "$ow" "$app"
    ;;
kms-register)
    need rpc "$rpc"; need key "$key"; need kms "$kms"; need app "$app"
    key="$(normkey "$key")"
    is_addr "$kms" || die "--kms must be a 0x address"; is_addr "$app" || die "--app must be a 0x address"
    send_tx "$kms" 'registerApp(address)' "$app"
    [[ "$("$CAST" call --rpc-url "$rpc" "$kms" 'registeredApps(address)(bool)' "$app")" == true ]] ||
        die "app $app is not registered with the KMS contract $kms after registerApp"
    ;;
kms-root)
    need rpc "$rpc"; need kms "$kms"
    is_addr "$kms" || die "--kms must be a 0x address"
    info="$("$CAST" call --rpc-url "$rpc" "$kms" 'kmsInfo()(bytes,bytes,bytes,bytes)')" ||
        die "eth_call kmsInfo() on $kms failed"
    k256="$(printf '%s\n' "$info" | head -n 1)"
    [[ "$k256" =~ ^0x0[23][0-9a-fA-F]{64}$ ]] ||
        die "the KMS contract $kms records no compressed secp256k1 root key (kmsInfo().k256Pubkey is '$k256')"
    printf '%s\n' "${k256#0x}"
    ;;
kms-state)
    need rpc "$rpc"; need kms "$kms"; need app "$app"
    is_addr "$kms" || die "--kms must be a 0x address"; is_addr "$app" || die "--app must be a 0x address"
    reg="$("$CAST" call --rpc-url "$rpc" "$kms" 'registeredApps(address)(bool)' "$app")" ||
        die "eth_call registeredApps on $kms failed"
    info="$("$CAST" call --rpc-url "$rpc" "$kms" 'kmsInfo()(bytes,bytes,bytes,bytes)')" ||
        die "eth_call kmsInfo() on $kms failed"
    os=""
    if [[ -n "$osimage" ]]; then
        [[ "$osimage" =~ ^0x[0-9a-fA-F]{64}$ ]] || die "--os-image must be 0x + 64 hex digits"
        os="$("$CAST" call --rpc-url "$rpc" "$kms" 'allowedOsImages(bytes32)(bool)' "$osimage")" ||
            die "eth_call allowedOsImages on $kms failed"
    fi
    node -e '
        const [kms, app, reg, info, osimage, os] = process.argv.slice(1);
        const l = info.split("\n").map((x) => x.trim());
        const out = { kms, app, registered: reg.trim() === "true", k256Pubkey: l[0], caPubkey: l[1] };
        if (osimage) out.osImage = { hash: osimage, allowed: os.trim() === "true" };
        process.stdout.write(JSON.stringify(out) + "\n");
    ' "$kms" "$app" "$reg" "$info" "$osimage" "$os"
    ;;
-h | --help | help) usage ;;
*) die "unknown subcommand '$cmd' (deploy, approve, revoke, state, kms-register, kms-root, kms-state)" ;;
esac
