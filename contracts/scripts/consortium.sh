#!/usr/bin/env bash
# consortium.sh: deploy and drive the ConsortiumApp contract (dstack app-auth, k of n).
# Offline: uses forge/cast from the repository's node_modules and the solc-js wrapper.
#
#   consortium.sh deploy  --rpc URL --key HEX --owners a,b,c --threshold K
#                         --compose-hash 0x.. --epsilon-milli N --min-group N
#                         --output-type S --privacy-unit S
#                         (--kms-root-address 0x.. | --kms-root-pubkey HEX) -> prints the address
#   consortium.sh approve --rpc URL --key HEX --app ADDR
#   consortium.sh revoke  --rpc URL --key HEX --app ADDR [--reason S]
#   consortium.sh state   --rpc URL --app ADDR                  -> prints JSON
#   consortium.sh register  --rpc URL --key HEX --app ADDR --dataset-id 0x(16 bytes)
#                           --manifest-hash 0x(32 bytes) [--budget-micro N]
#   consortium.sh supersede --rpc URL --key HEX --app ADDR --dataset-id 0x..
#                           --manifest-hash 0x(new) [--budget-micro N]
#   consortium.sh charge  --rpc URL --key HEX --app ADDR --signed FILE  -> prints the index
#   consortium.sh ledger  --rpc URL --app ADDR                  -> prints JSON
#   consortium.sh platform-propose --rpc URL --key HEX --app ADDR --require-tcb true|false
#                           [--os-images 0x..,0x..] [--devices 0x..,0x..] -> prints the id
#   consortium.sh platform-approve --rpc URL --key HEX --app ADDR --id N
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
    sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[[ -x "$FORGE" ]] || die "forge not found at $FORGE (npm install in $root?)"
[[ -x "$CAST" ]] || die "cast not found at $CAST"

# Foundry writes a cache under $HOME; keep it usable for root and for sandboxed users.
export FOUNDRY_OFFLINE=true

cmd="${1:-}"
[[ -n "$cmd" ]] || usage
shift

rpc="" key="" app="" owners="" threshold="" compose="" eps="" mingroup="" outtype="" unit=""
kmsaddr="" kmspub="" dsid="" manifest="" budget=0 signed="" requiretcb="" images="" devices="" pid="" kms="" osimage=""
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
        --kms-root-address) kmsaddr="$val" ;;
        --kms-root-pubkey) kmspub="$val" ;;
        --dataset-id) dsid="$val" ;;
        --manifest-hash) manifest="$val" ;;
        --budget-micro) budget="$val" ;;
        --signed) signed="$val" ;;
        --require-tcb) requiretcb="$val" ;;
        --os-images) images="$val" ;;
        --devices) devices="$val" ;;
        --id) pid="$val" ;;
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
is_b32() { [[ "$1" =~ ^0x[0-9a-fA-F]{64}$ ]]; }
is_b32_list() { [[ -z "$1" || "$1" =~ ^0x[0-9a-fA-F]{64}(,0x[0-9a-fA-F]{64})*$ ]]; }


# The Ethereum address of a secp256k1 public key given as hex (33 bytes compressed,
# 65 uncompressed, or 64 x||y): the last 20 bytes of keccak256(x || y).
pubkey_address() {
    node --input-type=module -e '
        const nm = process.argv[1], h = process.argv[2].replace(/^0x/i, "");
        const { secp256k1 } = await import(nm + "/@noble/curves/secp256k1.js");
        const { keccak_256 } = await import(nm + "/@noble/hashes/sha3.js");
        if (!/^([0-9a-fA-F]{66}|[0-9a-fA-F]{128}|[0-9a-fA-F]{130})$/.test(h)) throw new Error("not 33, 64 or 65 bytes of hex");
        const b = Buffer.from(h.length === 128 ? "04" + h : h, "hex");
        const xy = secp256k1.Point.fromBytes(b).toBytes(false).subarray(1);
        process.stdout.write("0x" + Buffer.from(keccak_256(xy).subarray(12)).toString("hex") + "\n");
    ' "$root/node_modules" "$1"
}

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

# cast send --json ARGS...: the receipt's JSON on stdout.  cast's stderr is kept
# apart (its own log lines, a retried block fetch say, are not the receipt) and
# shown if the send fails.  Run it as out="$(cast_send ...)" || exit 1.
cast_send() {
    local out errf
    errf="$(mktemp)"
    if ! out="$("$CAST" send --rpc-url "$rpc" --private-key "$key" --json "$@" 2>"$errf")"; then
        out="$(cat "$errf")"
        rm -f "$errf"
        die "$cmd failed: $(printf '%s' "$out" | tail -n 3)"
    fi
    rm -f "$errf"
    printf '%s' "$out"
}

# Send a transaction and fail unless it was mined with status 1.
send_tx() { # send_tx ADDR SIG [ARGS...]
    local out status
    out="$(cast_send "$@")" || exit 1
    status="$(printf '%s' "$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{process.stdout.write(String(JSON.parse(s).status))}catch(e){process.stdout.write("?")}})')"
    [[ "$status" == "0x1" || "$status" == "1" ]] || die "$cmd transaction failed (status $status): $out"
    log "$cmd: mined $(printf '%s' "$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{process.stdout.write(JSON.parse(s).transactionHash)}catch(e){}})')"
    last_receipt="$out"
}

# The first indexed topic of the last receipt's first log with event signature $1, as decimal.
receipt_topic1() {
    printf '%s' "$last_receipt" | node -e '
        const t0 = process.argv[1].toLowerCase();
        let s = ""; process.stdin.on("data", (d) => s += d).on("end", () => {
            const l = (JSON.parse(s).logs || []).find((x) => x.topics && x.topics[0].toLowerCase() === t0);
            if (!l) process.exit(1);
            process.stdout.write(BigInt(l.topics[1]).toString() + "\n");
        });' "$("$CAST" keccak "$1")"
}

call() { # call SIG [ARGS...] -> decoded output
    "$CAST" call --rpc-url "$rpc" "$app" "$@" || die "eth_call $1 on $app failed"
}

jcall() { # jcall BLOCK SIG [ARGS...] -> decoded output as a JSON array, at one block
    local b="$1"
    shift
    "$CAST" call --json --block "$b" --rpc-url "$rpc" "$app" "$@" || die "eth_call $1 on $app at block $b failed"
}

case "$cmd" in
deploy)
    need rpc "$rpc"; need key "$key"; need owners "$owners"; need threshold "$threshold"
    need compose-hash "$compose"; need epsilon-milli "$eps"; need min-group "$mingroup"
    need output-type "$outtype"; need privacy-unit "$unit"
    key="$(normkey "$key")"
    if [[ -n "$kmspub" ]]; then
        [[ -z "$kmsaddr" ]] || die "give --kms-root-address or --kms-root-pubkey, not both"
        kmsaddr="$(pubkey_address "$kmspub" 2>/dev/null)" || die "--kms-root-pubkey is not a secp256k1 public key"
    fi
    [[ -n "$kmsaddr" ]] || die "deploy: --kms-root-address or --kms-root-pubkey is required"
    is_addr "$kmsaddr" || die "--kms-root-address must be a 0x address"
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
    args="$("$CAST" abi-encode 'constructor(address[],uint256,bytes32,(uint32,uint32,string,string),address)' \
        "[$owners]" "$threshold" "$compose" "($eps,$mingroup,$outtype,$unit)" "$kmsaddr")" ||
        die "cannot ABI-encode constructor arguments"
    log "deploying ConsortiumApp: ${#olist[@]} owners, threshold $threshold, compose-hash $compose, KMS root $kmsaddr"
    out="$(cast_send --create "${bytecode}${args#0x}")" || exit 1
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
    kr="$(call 'kmsRootAddress()(address)')"
    pf="$(jcall latest 'platform()(bool,bytes32[],bytes32[],uint256)')"
    node -e '
        const [st, ap, po, rb, rr, ow, app, kr, pf] = process.argv.slice(1);
        const P2 = JSON.parse(pf);
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
            kmsRootAddress: kr.trim(),
            platform: { requireTcbUpToDate: P2[0], osImageHashes: P2[1], deviceIds: P2[2],
                        generation: Number(P2[3]) },
        }) + "\n");
    ' "$st" "$ap" "$po" "$rb" "$rr" "$ow" "$app" "$kr" "$pf"
    ;;
register | supersede)
    need rpc "$rpc"; need key "$key"; need app "$app"; need dataset-id "$dsid"; need manifest-hash "$manifest"
    key="$(normkey "$key")"; is_addr "$app" || die "--app must be a 0x address"
    [[ "$dsid" =~ ^0x[0-9a-fA-F]{32}$ ]] || die "--dataset-id must be 0x + 32 hex digits (16 bytes)"
    is_b32 "$manifest" || die "--manifest-hash must be 0x + 64 hex digits"
    is_uint "$budget" || die "--budget-micro must be a non-negative integer (0: the policy's total)"
    if [[ "$cmd" == register ]]; then
        send_tx "$app" 'registerDataset(bytes16,bytes32,uint64)' "$dsid" "$manifest" "$budget"
    else
        send_tx "$app" 'supersedeDataset(bytes16,bytes32,uint64)' "$dsid" "$manifest" "$budget"
    fi
    ;;
charge)
    # Relay a charge signed by the CVM (sign-charge.mjs writes this JSON); anyone may send it.
    need rpc "$rpc"; need key "$key"; need app "$app"; need signed "$signed"
    key="$(normkey "$key")"; is_addr "$app" || die "--app must be a 0x address"
    [[ -r "$signed" ]] || die "cannot read $signed"
    mapfile -t targs < <(node -e '
        const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        const r = j.request, s = j.sig, b = /^0x[0-9a-fA-F]*$/, u = /^[0-9]+$/;
        for (const v of [r.queryHash, r.nonce, ...r.manifestHashes, s.derivedPubkey, s.appPubkey, s.signature, s.chain0, s.chain1])
            if (typeof v !== "string" || !b.test(v)) throw new Error("not 0x-hex: " + v);
        for (const v of [r.epsilonMicro, r.deltaPico]) if (!u.test(String(v))) throw new Error("not an integer: " + v);
        console.log(`(${r.queryHash},${r.epsilonMicro},${r.deltaPico},[${r.manifestHashes.join(",")}],${r.nonce})`);
        console.log(`(${s.derivedPubkey},${s.appPubkey},${s.signature},${s.chain0},${s.chain1})`);
    ' "$signed") || die "$signed is not a signed charge (sign-charge.mjs output)"
    [[ ${#targs[@]} -eq 2 ]] || die "$signed is not a signed charge"
    send_tx "$app" 'charge((bytes32,uint64,uint64,bytes32[],bytes32),(bytes,bytes,bytes,bytes,bytes))' "${targs[0]}" "${targs[1]}"
    receipt_topic1 'Charged(uint256,bytes32,bytes32,uint64,uint64,bytes32[])' || die "no Charged event in the receipt"
    ;;
ledger)
    # Every charge and every dataset version, read at one block; chargedMicro is the sum of
    # the charges naming a version, which must equal its spentMicro and stay within budget.
    need rpc "$rpc"; need app "$app"
    is_addr "$app" || die "--app must be a 0x address"
    blk="$("$CAST" block-number --rpc-url "$rpc")" || die "cannot read the block number from $rpc"
    at() { jcall "$blk" "$@"; }
    nc="$(at 'chargeCount()(uint256)')"; nc="$(node -p 'JSON.parse(process.argv[1])[0]' "$nc")"
    nv="$(at 'datasetVersionCount()(uint256)')"; nv="$(node -p 'JSON.parse(process.argv[1])[0]' "$nv")"
    is_uint "$nc" && is_uint "$nv" || die "malformed counts from $app"
    tmp="$(mktemp)"; trap 'rm -f "$tmp"' EXIT
    for ((i = 0; i < nc; i++)); do
        printf 'C %s %s\n' "$i" "$(at 'charges(uint256)(bytes32,uint64,uint64,bytes32,uint64,bytes32[])' "$i" | tr -d '\n')" >>"$tmp"
    done
    for ((i = 0; i < nv; i++)); do
        h="$(at 'datasetVersionAt(uint256)(bytes32)' "$i" | tr -d '\n')"
        h="$(node -p 'JSON.parse(process.argv[1])[0]' "$h")"
        printf 'V %s %s\n' "$h" "$(at 'datasetVersion(bytes32)(address,bytes16,uint64,uint64,bool)' "$h" | tr -d '\n')" >>"$tmp"
    done
    node -e '
        const [file, app, blk] = process.argv.slice(1);
        // cast prints integers of 64 bits as bare JSON numbers: keep their digits exact
        const parse = (s) => JSON.parse(s.replace(/(^|[\[,\s])(\d{16,})(?=[\s,\]])/g, "$1\"$2\""));
        const charges = [], versions = [], charged = new Map();
        for (const line of require("fs").readFileSync(file, "utf8").split("\n").filter(Boolean)) {
            const [kind, key, ...rest] = line.split(" ");
            const v = parse(rest.join(" "));
            if (kind === "C") {
                charges.push({ index: Number(key), queryHash: v[0], epsilonMicro: String(v[1]), deltaPico: String(v[2]),
                               nonce: v[3], blockNumber: Number(v[4]), manifestHashes: v[5] });
                for (const h of v[5]) charged.set(h, (charged.get(h) || 0n) + BigInt(v[1]));
            } else {
                versions.push({ manifestHash: key, datasetId: v[1], owner: v[0], budgetMicro: String(v[2]),
                                spentMicro: String(v[3]), current: v[4] });
            }
        }
        let consistent = true;
        for (const d of versions) {
            d.chargedMicro = String(charged.get(d.manifestHash) || 0n);
            charged.delete(d.manifestHash);
            d.withinBudget = BigInt(d.spentMicro) <= BigInt(d.budgetMicro);
            if (d.chargedMicro !== d.spentMicro || !d.withinBudget) consistent = false;
        }
        if (charged.size) consistent = false; // a charge names a version that is not registered
        process.stdout.write(JSON.stringify({ app, block: Number(blk), charges, datasets: versions, consistent }) + "\n");
    ' "$tmp" "$app" "$blk"
    ;;
platform-propose)
    need rpc "$rpc"; need key "$key"; need app "$app"; need require-tcb "$requiretcb"
    key="$(normkey "$key")"; is_addr "$app" || die "--app must be a 0x address"
    [[ "$requiretcb" == true || "$requiretcb" == false ]] || die "--require-tcb must be true or false"
    is_b32_list "$images" || die "--os-images must be 0x + 64 hex digits, comma-separated"
    is_b32_list "$devices" || die "--devices must be 0x + 64 hex digits, comma-separated"
    send_tx "$app" 'proposePlatform(bool,bytes32[],bytes32[])' "$requiretcb" "[$images]" "[$devices]"
    receipt_topic1 'PlatformProposed(uint256,address,bool,bytes32[],bytes32[])' || die "no PlatformProposed event in the receipt"
    ;;
platform-approve)
    need rpc "$rpc"; need key "$key"; need app "$app"; need id "$pid"
    key="$(normkey "$key")"; is_addr "$app" || die "--app must be a 0x address"
    is_uint "$pid" || die "--id must be a non-negative integer"
    send_tx "$app" 'approvePlatform(uint256)' "$pid"
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
*) die "unknown subcommand '$cmd' (deploy, approve, revoke, state, register, supersede, charge, ledger, platform-propose, platform-approve)" ;;
*) die "unknown subcommand '$cmd' (deploy, approve, revoke, state, kms-register, kms-root, kms-state)" ;;
esac
