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
 * @dev Deliberately minimal and immutable: owners, threshold, compose-hash and policy are
 *      fixed at construction, because each owner's approval is an approval of exactly that
 *      recipe; a setter would let the recipe change under an approval already given.
 *      Revocation is global (any one owner) and final, so an owner can always withdraw its
 *      data from the consortium with a single transaction and nobody can undo it.
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

    /// @notice Emitted once, at deployment, with every term the owners approve.
    event ConsortiumCreated(
        address[] owners,
        uint256 threshold,
        bytes32 composeHash,
        uint32 epsilonMilli,
        uint32 minGroupSize,
        string outputType,
        string privacyUnit
    );
    /// @notice Emitted when `owner` approves; `count` is the approval count after it.
    event Approved(address indexed owner, uint256 count);
    /// @notice Emitted when `owner` revokes the consortium for good.
    event Revoked(address indexed owner, string reason);

    bytes32 private immutable _composeHash;
    uint256 private immutable _threshold;

    address[] private _owners;
    mapping(address => bool) private _isOwner;
    mapping(address => bool) private _hasApproved;
    address[] private _approvers;
    Policy private _policy;

    bool private _revoked;
    address private _revokedBy;
    string private _revokeReason;

    /**
     * @param owners_      The data owners (unique, non-zero). Each holds one vote.
     * @param threshold_   How many owners must approve (1 <= k <= n).
     * @param composeHash_ sha256 of the recipe's app-compose.json; pinned forever.
     * @param policy_      The analysis policy, recorded for verifiers.
     */
    constructor(address[] memory owners_, uint256 threshold_, bytes32 composeHash_, Policy memory policy_) {
        uint256 n = owners_.length;
        if (threshold_ == 0 || threshold_ > n) revert InvalidThreshold(threshold_, n);
        if (composeHash_ == bytes32(0)) revert ZeroComposeHash();
        for (uint256 i = 0; i < n; i++) {
            address o = owners_[i];
            if (o == address(0)) revert ZeroOwner();
            if (_isOwner[o]) revert DuplicateOwner(o);
            _isOwner[o] = true;
        }
        _owners = owners_;
        _threshold = threshold_;
        _composeHash = composeHash_;
        _policy = policy_;
        emit ConsortiumCreated(
            owners_,
            threshold_,
            composeHash_,
            policy_.epsilonMilli,
            policy_.minGroupSize,
            policy_.outputType,
            policy_.privacyUnit
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
        return (true, "");
    }

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
