// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.22;

import {ERC165} from "@openzeppelin/contracts/utils/introspection/ERC165.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {IAppAuth} from "./IAppAuth.sol";

/**
 * @title ConsortiumApp
 * @notice A dstack app-auth contract for a k-of-n data consortium. Its address is the
 *         dstack app id. dstack's KMS releases the app's keys to a CVM only when
 *         `isAppAllowed` says yes: the CVM booted the pinned compose-hash, at least
 *         `threshold` owners approved, and no owner revoked.
 * @dev Owners, threshold, compose-hash, policy and the KMS root are fixed at construction,
 *      because each owner's approval is an approval of exactly that recipe; a setter would
 *      let the recipe change under an approval already given. Revocation is global (any one
 *      owner) and final, so an owner can always withdraw its data from the consortium with a
 *      single transaction and nobody can undo it.
 *
 *      Two things may change, and only as the owners decide:
 *      - the platform the recipe may run on (TCB status, OS images, devices): a proposal
 *        that takes effect when `threshold` owners approved it, like the recipe itself.
 *        It is not part of the recipe (it says where the code runs, not what it does
 *        with the data), it must follow dstack OS updates and new machines without a new
 *        app id (a new app id is a new key, new sealed files and a new ledger), and an
 *        owner who disagrees keeps its veto: `revoke`;
 *      - the privacy-budget ledger of record: each owner registers its datasets (one
 *        budget per manifest version) and the analysis CVM charges them with a key that
 *        dstack's KMS issued to this app, so the spend is the same for every database,
 *        every CVM and every reader of the chain.
 */
contract ConsortiumApp is ERC165, IAppAuth {
    /// @notice The analysis policy the owners approve together with the compose-hash.
    /// @dev Stored on chain so that a verifier can read the terms from the same source
    ///      as the approval. It is informative: the CVM enforces it, the chain records it.
    struct Policy {
        uint32 epsilonMilli; // total privacy budget epsilon, in thousandths
        uint32 minGroupSize; // groups smaller than this are suppressed
        string outputType; // e.g. "dp-aggregate"
        string privacyUnit; // column that identifies a person (contribution bounding)
    }

    /// @notice A privacy-budget charge, as the analysis CVM signs it (see `chargeDigest`).
    /// @dev `epsilonMicro` is charged to every dataset version in `manifestHashes`;
    ///      `deltaPico` is recorded, not budgeted. `nonce` is chosen by the CVM and may
    ///      be used once, ever: it is what makes a signed charge impossible to replay.
    struct ChargeRequest {
        bytes32 queryHash;
        uint64 epsilonMicro;
        uint64 deltaPico;
        bytes32[] manifestHashes;
        bytes32 nonce;
    }

    /// @notice The CVM's signature over a charge and the dstack chain of its key.
    /// @dev The chain is exactly what the guest agent's `GetKey` at path and purpose
    ///      `LEDGER_PURPOSE` returns (`signature_chain[0]`, `[1]`); the public keys are
    ///      given uncompressed (x || y) so that their addresses can be compared with
    ///      `ecrecover`. Signatures are 65 bytes r || s || v with v in {0, 1, 27, 28}.
    struct ChargeSig {
        bytes derivedPubkey; // 64 bytes: GetKey's key at LEDGER_PURPOSE
        bytes appPubkey; // 64 bytes: the app key (signs chain0)
        bytes signature; // 65 bytes: by the derived key over chargeDigest(req)
        bytes chain0; // 65 bytes: app key over keccak256(purpose ":" hex(derived compressed))
        bytes chain1; // 65 bytes: KMS root over keccak256("dstack-kms-issued:" app id app compressed)
    }

    /// @notice The caller is not one of the owners.
    error NotOwner(address caller);
    /// @notice This owner already approved.
    error AlreadyApproved(address owner);
    /// @notice The consortium was revoked; nothing can change any more.
    /// @dev Named `AlreadyRevoked` because Solidity forbids an error and the `Revoked`
    ///      event sharing a name.
    error AlreadyRevoked(address by);
    /// @notice The threshold is 0 or larger than the number of owners.
    error InvalidThreshold(uint256 threshold, uint256 owners);
    /// @notice An owner address appears twice.
    error DuplicateOwner(address owner);
    /// @notice An owner address is zero.
    error ZeroOwner();
    /// @notice The pinned compose-hash is zero.
    error ZeroComposeHash();
    /// @notice The KMS root address is zero.
    error ZeroKmsRoot();

    // ---- dataset registry
    /// @notice A dataset id of zero.
    error ZeroDatasetId();
    /// @notice A manifest hash of zero.
    error ZeroManifestHash();
    /// @notice This dataset id is registered already (use `supersedeDataset`).
    error DatasetExists(bytes16 datasetId);
    /// @notice This manifest hash is registered already (under this or another dataset).
    error ManifestExists(bytes32 manifestHash);
    /// @notice No dataset with this id was registered.
    error UnknownDataset(bytes16 datasetId);
    /// @notice Only the owner who registered a dataset may supersede it.
    error NotDatasetOwner(bytes16 datasetId, address caller);

    // ---- charges
    /// @notice Fewer than `threshold` owners approved: nothing may be charged yet.
    error NotApproved(uint256 approvals, uint256 threshold);
    /// @notice A `ChargeSig` member has the wrong length.
    error MalformedChargeSig();
    /// @notice `signature` is not by `derivedPubkey` over `chargeDigest(req)`.
    error BadChargeSignature();
    /// @notice `chain0` is not by `appPubkey` over the derived key at `LEDGER_PURPOSE`.
    error BadAppSignature();
    /// @notice `chain1` recovers to `recovered`, not to `kmsRootAddress`: another KMS,
    ///         another app id, or an altered key or signature.
    error BadKmsSignature(address recovered);
    /// @notice This nonce was charged already.
    error NonceUsed(bytes32 nonce);
    /// @notice A charge must name at least one dataset version.
    error NoManifests();
    /// @notice A manifest hash appears twice in one charge.
    error DuplicateManifest(bytes32 manifestHash);
    /// @notice No dataset version has this manifest hash.
    error UnknownManifest(bytes32 manifestHash);
    /// @notice This dataset version was superseded and can no longer be charged.
    error ManifestSuperseded(bytes32 manifestHash);
    /// @notice The charge would take this dataset version past its budget.
    error BudgetExceeded(bytes32 manifestHash, uint64 spentMicro, uint64 epsilonMicro, uint64 budgetMicro);
    /// @notice No charge has this index.
    error UnknownCharge(uint256 index);

    // ---- platform
    /// @notice No platform proposal has this id.
    error UnknownPlatformProposal(uint256 id);
    /// @notice This owner approved this platform proposal already.
    error PlatformAlreadyApproved(uint256 id, address owner);
    /// @notice The platform changed since this proposal was made (or it was applied):
    ///         its approvals were given against another state.
    error StalePlatformProposal(uint256 id, uint256 baseGeneration, uint256 generation);
    /// @notice More than `MAX_PINS` OS image hashes or device ids.
    error TooManyPins(uint256 count);
    /// @notice An OS image hash or device id is listed twice, or is zero.
    error BadPin(bytes32 value);

    /// @notice Emitted once, at deployment, with every term the owners approve.
    event ConsortiumCreated(
        address[] owners,
        uint256 threshold,
        bytes32 composeHash,
        uint32 epsilonMilli,
        uint32 minGroupSize,
        string outputType,
        string privacyUnit,
        address kmsRootAddress
    );
    /// @notice Emitted when `owner` approves; `count` is the approval count after it.
    event Approved(address indexed owner, uint256 count);
    /// @notice Emitted when `owner` revokes the consortium for good.
    event Revoked(address indexed owner, string reason);

    /// @notice A dataset version was registered (also for the new version of `supersedeDataset`).
    event DatasetRegistered(
        bytes16 indexed datasetId, bytes32 indexed manifestHash, address indexed owner, uint64 budgetMicro
    );
    /// @notice `oldManifestHash` is no longer the current version of `datasetId`.
    event DatasetSuperseded(
        bytes16 indexed datasetId, bytes32 indexed oldManifestHash, bytes32 indexed newManifestHash
    );
    /// @notice Charge `index` was recorded.
    event Charged(
        uint256 indexed index,
        bytes32 indexed queryHash,
        bytes32 indexed nonce,
        uint64 epsilonMicro,
        uint64 deltaPico,
        bytes32[] manifestHashes
    );
    /// @notice Charge `index` took `epsilonMicro` from this dataset version; `spentMicro` is its total after.
    event DatasetCharged(bytes32 indexed manifestHash, uint256 indexed index, uint64 epsilonMicro, uint64 spentMicro);

    /// @notice Owner `proposer` proposed platform settings `id` (its own approval included).
    event PlatformProposed(
        uint256 indexed id,
        address indexed proposer,
        bool requireTcbUpToDate,
        bytes32[] osImageHashes,
        bytes32[] deviceIds
    );
    /// @notice `owner` approved platform proposal `id`; `count` approvals after it.
    event PlatformApproved(uint256 indexed id, address indexed owner, uint256 count);
    /// @notice Platform proposal `id` took effect; `generation` counts the changes so far.
    event PlatformChanged(
        uint256 indexed id, uint256 generation, bool requireTcbUpToDate, bytes32[] osImageHashes, bytes32[] deviceIds
    );

    /// @notice The GetKey path and purpose of the CVM's ledger key.
    string public constant LEDGER_PURPOSE = "dstack-ledger/v1";
    /// @notice Domain tag of `chargeDigest`.
    bytes32 public constant CHARGE_TYPEHASH = keccak256("dstack-ledger/v1 charge");
    /// @notice At most this many OS image hashes, and this many device ids, may be pinned.
    uint256 public constant MAX_PINS = 32;

    bytes32 private immutable _composeHash;
    uint256 private immutable _threshold;
    address private immutable _kmsRootAddress;

    address[] private _owners;
    mapping(address => bool) private _isOwner;
    mapping(address => bool) private _hasApproved;
    address[] private _approvers;
    Policy private _policy;

    bool private _revoked;
    address private _revokedBy;
    string private _revokeReason;

    /// @dev One dataset version (one manifest hash). Two slots.
    struct DatasetVersion {
        address owner;
        uint64 budgetMicro;
        bool current;
        bytes16 datasetId;
        uint64 spentMicro;
    }

    /// @dev One recorded charge.
    struct Charge {
        bytes32 queryHash;
        bytes32 nonce;
        uint64 epsilonMicro;
        uint64 deltaPico;
        uint64 blockNumber;
        bytes32[] manifestHashes;
    }

    /// @dev Platform settings, proposed or in force.
    struct Platform {
        bool requireTcbUpToDate;
        bytes32[] osImageHashes; // empty: any OS image
        bytes32[] deviceIds; // empty: any device
    }

    struct PlatformProposal {
        Platform platform;
        uint256 baseGeneration;
        uint256 approvals;
    }

    mapping(bytes32 => DatasetVersion) private _versions;
    bytes32[] private _versionList;
    mapping(bytes16 => bytes32) private _current;

    Charge[] private _charges;
    mapping(bytes32 => uint256) private _nonceIndex; // charge index + 1; 0 = unused

    Platform private _platform;
    uint256 private _platformGeneration;
    mapping(bytes32 => bool) private _osImageAllowed;
    mapping(bytes32 => bool) private _deviceAllowed;
    PlatformProposal[] private _proposals;
    mapping(uint256 => mapping(address => bool)) private _proposalVoted;

    /**
     * @param owners_      The data owners (unique, non-zero). Each holds one vote.
     * @param threshold_   How many owners must approve (1 <= k <= n).
     * @param composeHash_ sha256 of the recipe's app-compose.json; pinned forever.
     * @param policy_      The analysis policy, recorded for verifiers.
     * @param kmsRootAddress_ The Ethereum address of the dstack KMS root secp256k1 key:
     *        charges are accepted only from keys whose dstack chain ends there.
     */
    constructor(
        address[] memory owners_,
        uint256 threshold_,
        bytes32 composeHash_,
        Policy memory policy_,
        address kmsRootAddress_
    ) {
        uint256 n = owners_.length;
        if (threshold_ == 0 || threshold_ > n) revert InvalidThreshold(threshold_, n);
        if (composeHash_ == bytes32(0)) revert ZeroComposeHash();
        if (kmsRootAddress_ == address(0)) revert ZeroKmsRoot();
        for (uint256 i = 0; i < n; i++) {
            address o = owners_[i];
            if (o == address(0)) revert ZeroOwner();
            if (_isOwner[o]) revert DuplicateOwner(o);
            _isOwner[o] = true;
        }
        _owners = owners_;
        _threshold = threshold_;
        _composeHash = composeHash_;
        _kmsRootAddress = kmsRootAddress_;
        _policy = policy_;
        emit ConsortiumCreated(
            owners_,
            threshold_,
            composeHash_,
            policy_.epsilonMilli,
            policy_.minGroupSize,
            policy_.outputType,
            policy_.privacyUnit,
            kmsRootAddress_
        );
    }

    /// @dev Only owners may vote or revoke.
    modifier onlyOwner() {
        if (!_isOwner[msg.sender]) revert NotOwner(msg.sender);
        _;
    }

    /// @dev A revoked consortium is frozen.
    modifier notRevoked() {
        if (_revoked) revert AlreadyRevoked(_revokedBy);
        _;
    }

    /**
     * @notice Approve the pinned compose-hash and policy. Once per owner; there is no
     *         "unapprove" because withdrawal is what `revoke` is for.
     */
    function approve() external onlyOwner notRevoked {
        if (_hasApproved[msg.sender]) revert AlreadyApproved(msg.sender);
        _hasApproved[msg.sender] = true;
        _approvers.push(msg.sender);
        emit Approved(msg.sender, _approvers.length);
    }

    /**
     * @notice Revoke the consortium for everyone, for good. Any single owner may do it,
     *         whether or not it approved, so that no owner's data can be used against its
     *         will. Revoking twice reverts (the first reason stands).
     * @param reason Free text, recorded on chain and reported by `isAppAllowed`.
     */
    function revoke(string calldata reason) external onlyOwner notRevoked {
        _revoked = true;
        _revokedBy = msg.sender;
        _revokeReason = reason;
        emit Revoked(msg.sender, reason);
    }

    /// @inheritdoc IAppAuth
    function isAppAllowed(AppBootInfo calldata bootInfo)
        external
        view
        override
        returns (bool isAllowed, string memory reason)
    {
        if (bootInfo.appId != address(this)) return (false, "wrong app id");
        if (bootInfo.composeHash != _composeHash) return (false, "compose hash not allowed");
        if (_revoked) {
            return (false, string.concat("revoked by owner ", Strings.toChecksumHexString(_revokedBy)));
        }
        uint256 count = _approvers.length;
        if (count < _threshold) {
            return (
                false,
                string.concat(
                    "only ",
                    Strings.toString(count),
                    " of ",
                    Strings.toString(_threshold),
                    " required owner approvals"
                )
            );
        }
        if (_platform.requireTcbUpToDate && keccak256(bytes(bootInfo.tcbStatus)) != keccak256("UpToDate")) {
            return (false, "TCB status is not up to date");
        }
        if (_platform.osImageHashes.length != 0 && !_osImageAllowed[bootInfo.osImageHash]) {
            return (false, "OS image not allowed");
        }
        if (_platform.deviceIds.length != 0 && !_deviceAllowed[bootInfo.deviceId]) {
            return (false, "device not allowed");
        }
        return (true, "");
    }

    // ---- platform (k of n) ------------------------------------------------------

    /**
     * @notice Propose the complete platform settings: whether the TCB must be "UpToDate",
     *         the OS image hashes and the device ids a CVM may boot with (an empty list
     *         allows any). They replace the settings in force when `threshold` owners
     *         approved the proposal; the proposer's approval counts, so with threshold 1
     *         it takes effect at once. A proposal approved after another one took effect
     *         is stale and can no longer be approved.
     * @return id The proposal's id (0, 1, 2, ...).
     */
    function proposePlatform(bool requireTcbUpToDate, bytes32[] calldata osImageHashes, bytes32[] calldata deviceIds)
        external
        onlyOwner
        notRevoked
        returns (uint256 id)
    {
        _checkPins(osImageHashes);
        _checkPins(deviceIds);
        id = _proposals.length;
        PlatformProposal storage p = _proposals.push();
        p.platform.requireTcbUpToDate = requireTcbUpToDate;
        p.platform.osImageHashes = osImageHashes;
        p.platform.deviceIds = deviceIds;
        p.baseGeneration = _platformGeneration;
        emit PlatformProposed(id, msg.sender, requireTcbUpToDate, osImageHashes, deviceIds);
        _approvePlatform(id, p);
    }

    /// @notice Approve platform proposal `id`; the approval that reaches `threshold` applies it.
    function approvePlatform(uint256 id) external onlyOwner notRevoked {
        if (id >= _proposals.length) revert UnknownPlatformProposal(id);
        PlatformProposal storage p = _proposals[id];
        if (p.baseGeneration != _platformGeneration) {
            revert StalePlatformProposal(id, p.baseGeneration, _platformGeneration);
        }
        if (_proposalVoted[id][msg.sender]) revert PlatformAlreadyApproved(id, msg.sender);
        _approvePlatform(id, p);
    }

    function _approvePlatform(uint256 id, PlatformProposal storage p) private {
        _proposalVoted[id][msg.sender] = true;
        uint256 count = ++p.approvals;
        emit PlatformApproved(id, msg.sender, count);
        if (count < _threshold) return;

        Platform storage cur = _platform;
        for (uint256 i = 0; i < cur.osImageHashes.length; i++) {
            _osImageAllowed[cur.osImageHashes[i]] = false;
        }
        for (uint256 i = 0; i < cur.deviceIds.length; i++) {
            _deviceAllowed[cur.deviceIds[i]] = false;
        }
        cur.requireTcbUpToDate = p.platform.requireTcbUpToDate;
        cur.osImageHashes = p.platform.osImageHashes;
        cur.deviceIds = p.platform.deviceIds;
        for (uint256 i = 0; i < cur.osImageHashes.length; i++) {
            _osImageAllowed[cur.osImageHashes[i]] = true;
        }
        for (uint256 i = 0; i < cur.deviceIds.length; i++) {
            _deviceAllowed[cur.deviceIds[i]] = true;
        }
        uint256 generation = ++_platformGeneration;
        emit PlatformChanged(id, generation, cur.requireTcbUpToDate, cur.osImageHashes, cur.deviceIds);
    }

    /// @dev At most MAX_PINS values, none zero, none twice.
    function _checkPins(bytes32[] calldata pins) private pure {
        if (pins.length > MAX_PINS) revert TooManyPins(pins.length);
        for (uint256 i = 0; i < pins.length; i++) {
            if (pins[i] == bytes32(0)) revert BadPin(pins[i]);
            for (uint256 j = 0; j < i; j++) {
                if (pins[j] == pins[i]) revert BadPin(pins[i]);
            }
        }
    }

    /// @notice The platform settings in force and how many times they changed.
    function platform()
        external
        view
        returns (
            bool requireTcbUpToDate,
            bytes32[] memory osImageHashes,
            bytes32[] memory deviceIds,
            uint256 generation
        )
    {
        return (_platform.requireTcbUpToDate, _platform.osImageHashes, _platform.deviceIds, _platformGeneration);
    }

    /// @notice Number of platform proposals ever made.
    function platformProposalCount() external view returns (uint256) {
        return _proposals.length;
    }

    /// @notice Platform proposal `id`: its settings, the generation it was made against
    ///         (it can apply only while `platform().generation` equals it), its approvals.
    function platformProposal(uint256 id)
        external
        view
        returns (
            bool requireTcbUpToDate,
            bytes32[] memory osImageHashes,
            bytes32[] memory deviceIds,
            uint256 baseGeneration,
            uint256 approvals
        )
    {
        if (id >= _proposals.length) revert UnknownPlatformProposal(id);
        PlatformProposal storage p = _proposals[id];
        return (
            p.platform.requireTcbUpToDate,
            p.platform.osImageHashes,
            p.platform.deviceIds,
            p.baseGeneration,
            p.approvals
        );
    }

    /// @notice Whether `owner` approved platform proposal `id`.
    function hasApprovedPlatform(uint256 id, address owner) external view returns (bool) {
        return _proposalVoted[id][owner];
    }

    // ---- dataset registry --------------------------------------------------------

    /**
     * @notice Register a dataset: its first version, `manifestHash` (the sha256 of the
     *         sealed file's canonical manifest), with a budget of `budgetMicro` millionths
     *         of epsilon (0: the policy's total). The caller, an owner, owns the dataset.
     */
    function registerDataset(bytes16 datasetId, bytes32 manifestHash, uint64 budgetMicro)
        external
        onlyOwner
        notRevoked
    {
        if (datasetId == bytes16(0)) revert ZeroDatasetId();
        if (_current[datasetId] != bytes32(0)) revert DatasetExists(datasetId);
        _addVersion(datasetId, manifestHash, budgetMicro);
    }

    /**
     * @notice Replace the current version of `datasetId` by `newManifestHash`, with its
     *         own budget (0: the policy's total). The old version stays on record with
     *         its spend but can no longer be charged. Only the dataset's owner may do it.
     */
    function supersedeDataset(bytes16 datasetId, bytes32 newManifestHash, uint64 budgetMicro) external notRevoked {
        bytes32 old = _current[datasetId];
        if (old == bytes32(0)) revert UnknownDataset(datasetId);
        DatasetVersion storage v = _versions[old];
        if (v.owner != msg.sender) revert NotDatasetOwner(datasetId, msg.sender);
        v.current = false;
        emit DatasetSuperseded(datasetId, old, newManifestHash);
        _addVersion(datasetId, newManifestHash, budgetMicro);
    }

    function _addVersion(bytes16 datasetId, bytes32 manifestHash, uint64 budgetMicro) private {
        if (manifestHash == bytes32(0)) revert ZeroManifestHash();
        if (_versions[manifestHash].owner != address(0)) revert ManifestExists(manifestHash);
        uint64 budget = budgetMicro != 0 ? budgetMicro : uint64(_policy.epsilonMilli) * 1000;
        _versions[manifestHash] = DatasetVersion({
            owner: msg.sender, budgetMicro: budget, current: true, datasetId: datasetId, spentMicro: 0
        });
        _versionList.push(manifestHash);
        _current[datasetId] = manifestHash;
        emit DatasetRegistered(datasetId, manifestHash, msg.sender, budget);
    }

    /// @notice One dataset version; `owner` is zero when the manifest hash is unknown.
    function datasetVersion(bytes32 manifestHash)
        external
        view
        returns (address owner, bytes16 datasetId, uint64 budgetMicro, uint64 spentMicro, bool current)
    {
        DatasetVersion storage v = _versions[manifestHash];
        return (v.owner, v.datasetId, v.budgetMicro, v.spentMicro, v.current);
    }

    /// @notice The current version of `datasetId` (zero when unknown).
    function currentManifest(bytes16 datasetId) external view returns (bytes32) {
        return _current[datasetId];
    }

    /// @notice Number of dataset versions ever registered (superseded ones included).
    function datasetVersionCount() external view returns (uint256) {
        return _versionList.length;
    }

    /// @notice The manifest hash of the `i`-th registered dataset version (0-based).
    function datasetVersionAt(uint256 i) external view returns (bytes32) {
        return _versionList[i];
    }

    // ---- charges -------------------------------------------------------------------

    /**
     * @notice What the CVM's ledger key signs for `req` (raw 32 bytes, no message prefix):
     *         keccak256(abi.encode(CHARGE_TYPEHASH, address(this), block.chainid,
     *         queryHash, epsilonMicro, deltaPico, keccak256(abi.encodePacked(manifestHashes)),
     *         nonce)). The contract and chain id keep a signature from counting elsewhere.
     */
    function chargeDigest(ChargeRequest calldata req) public view returns (bytes32) {
        return keccak256(
            abi.encode(
                CHARGE_TYPEHASH,
                address(this),
                block.chainid,
                req.queryHash,
                req.epsilonMicro,
                req.deltaPico,
                keccak256(abi.encodePacked(req.manifestHashes)),
                req.nonce
            )
        );
    }

    /**
     * @notice Charge `req.epsilonMicro` to every dataset version in `req.manifestHashes`,
     *         all or nothing. Anyone may send it: it counts only when signed by a key that
     *         dstack's KMS issued to this app for `LEDGER_PURPOSE`, which only a CVM that
     *         booted the pinned recipe can hold. Each dataset version is checked against
     *         its own budget, so an owner whose dataset is spent blocks only the queries
     *         that read it.
     * @return index The charge's index (0, 1, 2, ...).
     */
    function charge(ChargeRequest calldata req, ChargeSig calldata sig) external returns (uint256 index) {
        if (_revoked) revert AlreadyRevoked(_revokedBy);
        if (_approvers.length < _threshold) revert NotApproved(_approvers.length, _threshold);
        _checkChargeSig(chargeDigest(req), sig);
        if (_nonceIndex[req.nonce] != 0) revert NonceUsed(req.nonce);

        bytes32[] calldata hashes = req.manifestHashes;
        uint256 n = hashes.length;
        if (n == 0) revert NoManifests();
        uint64 eps = req.epsilonMicro;
        for (uint256 i = 0; i < n; i++) {
            bytes32 h = hashes[i];
            for (uint256 j = 0; j < i; j++) {
                if (hashes[j] == h) revert DuplicateManifest(h);
            }
            DatasetVersion storage v = _versions[h];
            if (v.owner == address(0)) revert UnknownManifest(h);
            if (!v.current) revert ManifestSuperseded(h);
            if (uint256(v.spentMicro) + eps > v.budgetMicro) {
                revert BudgetExceeded(h, v.spentMicro, eps, v.budgetMicro);
            }
            v.spentMicro += eps;
        }

        index = _charges.length;
        _charges.push(
            Charge({
                queryHash: req.queryHash,
                nonce: req.nonce,
                epsilonMicro: eps,
                deltaPico: req.deltaPico,
                blockNumber: uint64(block.number),
                manifestHashes: hashes
            })
        );
        _nonceIndex[req.nonce] = index + 1;
        emit Charged(index, req.queryHash, req.nonce, eps, req.deltaPico, hashes);
        for (uint256 i = 0; i < n; i++) {
            emit DatasetCharged(hashes[i], index, eps, _versions[hashes[i]].spentMicro);
        }
    }

    /**
     * @dev The dstack chain, link by link:
     *      signature: derived key over `digest`;
     *      chain0:    app key over keccak256(LEDGER_PURPOSE ":" lowercase hex of the
     *                 compressed derived key), as the guest agent's GetKey signs it;
     *      chain1:    KMS root over keccak256("dstack-kms-issued:" || address(this) ||
     *                 compressed app key), as dstack-kms signs the app key it issues.
     *      A public key is bound to a signer by its address (keccak256 of x || y), so an
     *      invented key cannot stand in for the one that signed.
     */
    function _checkChargeSig(bytes32 digest, ChargeSig calldata sig) private view {
        if (
            sig.derivedPubkey.length != 64 || sig.appPubkey.length != 64 || sig.signature.length != 65
                || sig.chain0.length != 65 || sig.chain1.length != 65
        ) revert MalformedChargeSig();
        if (_recover(digest, sig.signature) != _pubkeyAddress(sig.derivedPubkey)) revert BadChargeSignature();
        bytes32 appDigest =
            keccak256(abi.encodePacked(LEDGER_PURPOSE, ":", _lowerHex(_compress(sig.derivedPubkey))));
        if (_recover(appDigest, sig.chain0) != _pubkeyAddress(sig.appPubkey)) revert BadAppSignature();
        bytes32 kmsDigest = keccak256(abi.encodePacked("dstack-kms-issued:", address(this), _compress(sig.appPubkey)));
        address root = _recover(kmsDigest, sig.chain1);
        if (root != _kmsRootAddress || root == address(0)) revert BadKmsSignature(root);
    }

    /// @dev ecrecover of a 65-byte r || s || v, v in {0, 1, 27, 28}; zero when invalid.
    function _recover(bytes32 digest, bytes calldata sig) private pure returns (address) {
        uint8 v = uint8(sig[64]);
        if (v < 27) v += 27;
        if (v != 27 && v != 28) return address(0);
        return ecrecover(digest, v, bytes32(sig[0:32]), bytes32(sig[32:64]));
    }

    /// @dev The Ethereum address of an uncompressed public key x || y (64 bytes).
    function _pubkeyAddress(bytes calldata pub) private pure returns (address) {
        return address(uint160(uint256(keccak256(pub))));
    }

    /// @dev SEC1 compressed form: 0x02 (y even) or 0x03 (y odd), then x.
    function _compress(bytes calldata pub) private pure returns (bytes memory) {
        return abi.encodePacked(uint8(pub[63]) & 1 == 0 ? bytes1(0x02) : bytes1(0x03), pub[0:32]);
    }

    /// @dev Lowercase hex, no prefix.
    function _lowerHex(bytes memory b) private pure returns (bytes memory out) {
        bytes16 digits = "0123456789abcdef";
        out = new bytes(2 * b.length);
        for (uint256 i = 0; i < b.length; i++) {
            out[2 * i] = digits[uint8(b[i]) >> 4];
            out[2 * i + 1] = digits[uint8(b[i]) & 0x0f];
        }
    }

    /// @notice Number of charges recorded.
    function chargeCount() external view returns (uint256) {
        return _charges.length;
    }

    /// @notice Charge `index` as recorded: what was signed, and the block it was recorded in.
    function charges(uint256 index)
        external
        view
        returns (
            bytes32 queryHash,
            uint64 epsilonMicro,
            uint64 deltaPico,
            bytes32 nonce,
            uint64 blockNumber,
            bytes32[] memory manifestHashes
        )
    {
        if (index >= _charges.length) revert UnknownCharge(index);
        Charge storage c = _charges[index];
        return (c.queryHash, c.epsilonMicro, c.deltaPico, c.nonce, c.blockNumber, c.manifestHashes);
    }

    /// @notice Whether `nonce` was charged.
    function nonceUsed(bytes32 nonce) external view returns (bool) {
        return _nonceIndex[nonce] != 0;
    }

    /// @notice The index of the charge that used `nonce` (found false when none did):
    ///         a CVM whose transaction outcome was lost finds its charge here.
    function chargeByNonce(bytes32 nonce) external view returns (bool found, uint256 index) {
        uint256 i = _nonceIndex[nonce];
        return i == 0 ? (false, 0) : (true, i - 1);
    }

    /// @notice The Ethereum address of the dstack KMS root key charges must chain to.
    function kmsRootAddress() external view returns (address) {
        return _kmsRootAddress;
    }

    // ---- views ---------------------------------------------------------------------

    /// @notice Everything a client polls, in one eth_call.
    /// @return approvals    Number of owners who approved.
    /// @return threshold_   Approvals required.
    /// @return revoked_     Whether the consortium was revoked.
    /// @return composeHash_ The pinned compose-hash.
    function state()
        external
        view
        returns (uint256 approvals, uint256 threshold_, bool revoked_, bytes32 composeHash_)
    {
        return (_approvers.length, _threshold, _revoked, _composeHash);
    }

    /// @notice True when at least `threshold` owners approved and nobody revoked.
    function isApproved() external view returns (bool) {
        return !_revoked && _approvers.length >= _threshold;
    }

    /// @notice The owners, in construction order.
    function owners() external view returns (address[] memory) {
        return _owners;
    }

    /// @notice Approvals required.
    function threshold() external view returns (uint256) {
        return _threshold;
    }

    /// @notice The pinned compose-hash.
    function composeHash() external view returns (bytes32) {
        return _composeHash;
    }

    /// @notice Number of owners who approved.
    function approvalCount() external view returns (uint256) {
        return _approvers.length;
    }

    /// @notice Whether `owner` approved.
    function hasApproved(address owner) external view returns (bool) {
        return _hasApproved[owner];
    }

    /// @notice The owners who approved, in approval order.
    function approvers() external view returns (address[] memory) {
        return _approvers;
    }

    /// @notice Whether `account` is an owner.
    function isOwner(address account) external view returns (bool) {
        return _isOwner[account];
    }

    /// @notice Whether the consortium was revoked.
    function revoked() external view returns (bool) {
        return _revoked;
    }

    /// @notice The owner who revoked (zero if not revoked).
    function revokedBy() external view returns (address) {
        return _revokedBy;
    }

    /// @notice The reason given at revocation (empty if not revoked).
    function revokeReason() external view returns (string memory) {
        return _revokeReason;
    }

    /// @notice The analysis policy recorded at deployment.
    function policy()
        external
        view
        returns (uint32 epsilonMilli, uint32 minGroupSize, string memory outputType, string memory privacyUnit)
    {
        Policy storage p = _policy;
        return (p.epsilonMilli, p.minGroupSize, p.outputType, p.privacyUnit);
    }

    /// @notice ERC-165: IAppAuth (0x1e079198) and IERC165.
    function supportsInterface(bytes4 interfaceId) public view override(ERC165, IERC165) returns (bool) {
        return interfaceId == type(IAppAuth).interfaceId || super.supportsInterface(interfaceId);
    }
}
