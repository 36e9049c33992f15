// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.22;

import {Test, Vm} from "./utils/Test.sol";
import {ConsortiumApp} from "../src/ConsortiumApp.sol";

/**
 * The privacy-budget ledger: dataset registry, charges signed with a dstack-chained key.
 * Keys are chosen here and play dstack's roles: KMS_SK the KMS root, APP_SK the app key
 * the KMS issued to the contract's address, DERIVED_SK the guest agent's GetKey key at
 * "dstack-ledger/v1". The chain is built from the message layouts written out below,
 * independently of the contract's helpers.
 */
contract LedgerTest is Test {
    bytes32 constant HASH = keccak256("app-compose.json");
    address constant A = address(0xA11CE);
    address constant B = address(0xB0B);
    address constant C = address(0xC0C);
    address constant OUTSIDER = address(0xBAD);

    uint256 constant KMS_SK = 0x4b4d53;
    uint256 constant APP_SK = 0xa99;
    uint256 constant DERIVED_SK = 0xde41;
    uint256 constant OTHER_SK = 0x07e4;

    bytes16 constant DS_A = bytes16(keccak256("dataset of A"));
    bytes16 constant DS_B = bytes16(keccak256("dataset of B"));
    bytes32 constant M_A1 = keccak256("manifest A v1");
    bytes32 constant M_A2 = keccak256("manifest A v2");
    bytes32 constant M_B1 = keccak256("manifest B v1");

    ConsortiumApp app;

    function setUp() public {
        address[] memory o = new address[](3);
        o[0] = A;
        o[1] = B;
        o[2] = C;
        app = new ConsortiumApp(
            o,
            2,
            HASH,
            ConsortiumApp.Policy({
                epsilonMilli: 1500, minGroupSize: 10, outputType: "dp-aggregate", privacyUnit: "patient_id"
            }),
            vm.addr(KMS_SK)
        );
        vm.prank(A);
        app.approve();
        vm.prank(B);
        app.approve();
    }

    // ---- building dstack chains ------------------------------------------------------

    function _pub(uint256 sk) internal returns (bytes memory) {
        Vm.Wallet memory w = vm.createWallet(sk);
        return abi.encodePacked(bytes32(w.publicKeyX), bytes32(w.publicKeyY));
    }

    function _compressed(uint256 sk) internal returns (bytes memory) {
        Vm.Wallet memory w = vm.createWallet(sk);
        return abi.encodePacked(w.publicKeyY % 2 == 0 ? bytes1(0x02) : bytes1(0x03), bytes32(w.publicKeyX));
    }

    /// lowercase hex without 0x, through forge's own formatter
    function _hex(bytes memory b) internal pure returns (bytes memory out) {
        bytes memory s = bytes(vm.toString(b));
        out = new bytes(s.length - 2);
        for (uint256 i = 0; i < out.length; i++) {
            out[i] = s[i + 2];
        }
    }

    function _sign(uint256 sk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(sk, digest);
        return abi.encodePacked(r, s, v);
    }

    /// chain[0]: the app key over keccak256(purpose ":" hex(compressed derived key))
    function _chain0(uint256 appSk, string memory purpose, uint256 derivedSk) internal returns (bytes memory) {
        return _sign(appSk, keccak256(abi.encodePacked(purpose, ":", _hex(_compressed(derivedSk)))));
    }

    /// chain[1]: the KMS root over keccak256("dstack-kms-issued:" app id (20) compressed app key (33))
    function _chain1(uint256 kmsSk, address appId, uint256 appSk) internal returns (bytes memory) {
        return _sign(kmsSk, keccak256(abi.encodePacked("dstack-kms-issued:", appId, _compressed(appSk))));
    }

    function _req(uint64 eps, bytes32[] memory m, bytes32 nonce)
        internal
        pure
        returns (ConsortiumApp.ChargeRequest memory r)
    {
        r.queryHash = keccak256(abi.encodePacked("SELECT dp_count(patient_id, 0.1) FROM t", nonce));
        r.epsilonMicro = eps;
        r.deltaPico = 1_000_000;
        r.manifestHashes = m;
        r.nonce = nonce;
    }

    function _sig(ConsortiumApp.ChargeRequest memory r) internal returns (ConsortiumApp.ChargeSig memory s) {
        s.derivedPubkey = _pub(DERIVED_SK);
        s.appPubkey = _pub(APP_SK);
        s.signature = _sign(DERIVED_SK, app.chargeDigest(r));
        s.chain0 = _chain0(APP_SK, "dstack-ledger/v1", DERIVED_SK);
        s.chain1 = _chain1(KMS_SK, address(app), APP_SK);
    }

    function _m1(bytes32 a) internal pure returns (bytes32[] memory m) {
        m = new bytes32[](1);
        m[0] = a;
    }

    function _m2(bytes32 a, bytes32 b) internal pure returns (bytes32[] memory m) {
        m = new bytes32[](2);
        m[0] = a;
        m[1] = b;
    }

    function _registerBoth(uint64 budgetA, uint64 budgetB) internal {
        vm.prank(A);
        app.registerDataset(DS_A, M_A1, budgetA);
        vm.prank(B);
        app.registerDataset(DS_B, M_B1, budgetB);
    }

    function _charge(ConsortiumApp.ChargeRequest memory r) internal returns (uint256) {
        ConsortiumApp.ChargeSig memory s = _sig(r);
        vm.prank(OUTSIDER); // anyone may relay
        return app.charge(r, s);
    }

    function _spent(bytes32 m) internal view returns (uint64 spent) {
        (,,, spent,) = app.datasetVersion(m);
    }

    // ---- digest ----------------------------------------------------------------------

    function testChargeDigestLayout() public {
        ConsortiumApp.ChargeRequest memory r = _req(250_000, _m2(M_A1, M_B1), bytes32(uint256(7)));
        bytes32 want = keccak256(
            abi.encodePacked(
                keccak256("dstack-ledger/v1 charge"),
                bytes32(uint256(uint160(address(app)))),
                bytes32(block.chainid),
                r.queryHash,
                bytes32(uint256(r.epsilonMicro)),
                bytes32(uint256(r.deltaPico)),
                keccak256(abi.encodePacked(M_A1, M_B1)),
                r.nonce
            )
        );
        assertEq(app.chargeDigest(r), want, "digest = keccak of 8 words");
        assertEq(app.CHARGE_TYPEHASH(), keccak256("dstack-ledger/v1 charge"), "typehash");
        assertEq(app.LEDGER_PURPOSE(), "dstack-ledger/v1", "purpose");

        // every field is bound
        bytes32 d = app.chargeDigest(r);
        r.epsilonMicro += 1;
        assertTrue(app.chargeDigest(r) != d, "epsilon bound");
        r.epsilonMicro -= 1;
        r.deltaPico += 1;
        assertTrue(app.chargeDigest(r) != d, "delta bound");
        r.deltaPico -= 1;
        r.manifestHashes = _m2(M_B1, M_A1);
        assertTrue(app.chargeDigest(r) != d, "manifest order bound");
        r.manifestHashes = _m2(M_A1, M_B1);
        r.nonce = bytes32(uint256(8));
        assertTrue(app.chargeDigest(r) != d, "nonce bound");
        r.nonce = bytes32(uint256(7));
        r.queryHash = bytes32(0);
        assertTrue(app.chargeDigest(r) != d, "query bound");
        r.queryHash = keccak256(abi.encodePacked("SELECT dp_count(patient_id, 0.1) FROM t", bytes32(uint256(7))));
        assertEq(app.chargeDigest(r), d, "restored");
        vm.chainId(1);
        assertTrue(app.chargeDigest(r) != d, "chain id bound");
    }

    // ---- registry --------------------------------------------------------------------

    function testRegisterDataset() public {
        vm.expectEmit(true, true, true, true, address(app));
        emit ConsortiumApp.DatasetRegistered(DS_A, M_A1, A, 1_500_000);
        vm.prank(A);
        app.registerDataset(DS_A, M_A1, 0);
        (address owner, bytes16 id, uint64 budget, uint64 spent, bool current) = app.datasetVersion(M_A1);
        assertEq(owner, A, "owner");
        assertTrue(id == DS_A, "dataset id");
        assertEq(uint256(budget), 1_500_000, "0 means the policy's total");
        assertEq(uint256(spent), 0, "nothing spent");
        assertTrue(current, "current");
        assertEq(app.currentManifest(DS_A), M_A1, "current manifest");
        assertEq(app.datasetVersionCount(), 1, "one version");
        assertEq(app.datasetVersionAt(0), M_A1, "version 0");

        vm.prank(B);
        app.registerDataset(DS_B, M_B1, 400_000);
        (owner,, budget,,) = app.datasetVersion(M_B1);
        assertEq(owner, B, "owner B");
        assertEq(uint256(budget), 400_000, "explicit budget");

        (owner, id, budget, spent, current) = app.datasetVersion(keccak256("unknown"));
        assertEq(owner, address(0), "unknown: zero owner");
        assertFalse(current, "unknown: not current");
        assertEq(app.currentManifest(bytes16(keccak256("unknown"))), bytes32(0), "unknown dataset");
    }

    function testNonOwnerCannotRegister() public {
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.NotOwner.selector, OUTSIDER));
        vm.prank(OUTSIDER);
        app.registerDataset(DS_A, M_A1, 0);
    }

    function testRegisterRefusals() public {
        vm.prank(A);
        app.registerDataset(DS_A, M_A1, 0);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.DatasetExists.selector, DS_A));
        vm.prank(B);
        app.registerDataset(DS_A, M_B1, 0);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.ManifestExists.selector, M_A1));
        vm.prank(B);
        app.registerDataset(DS_B, M_A1, 0);
        vm.expectRevert(ConsortiumApp.ZeroDatasetId.selector);
        vm.prank(B);
        app.registerDataset(bytes16(0), M_B1, 0);
        vm.expectRevert(ConsortiumApp.ZeroManifestHash.selector);
        vm.prank(B);
        app.registerDataset(DS_B, bytes32(0), 0);
    }

    function testRegisterAfterRevokeRefused() public {
        vm.prank(C);
        app.revoke("stop");
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.AlreadyRevoked.selector, C));
        vm.prank(A);
        app.registerDataset(DS_A, M_A1, 0);
    }

    function testSupersede() public {
        _registerBoth(1_000_000, 0);
        _charge(_req(300_000, _m1(M_A1), bytes32(uint256(1))));

        vm.expectEmit(true, true, true, true, address(app));
        emit ConsortiumApp.DatasetSuperseded(DS_A, M_A1, M_A2);
        vm.expectEmit(true, true, true, true, address(app));
        emit ConsortiumApp.DatasetRegistered(DS_A, M_A2, A, 500_000);
        vm.prank(A);
        app.supersedeDataset(DS_A, M_A2, 500_000);

        (address owner, bytes16 id, uint64 budget, uint64 spent, bool current) = app.datasetVersion(M_A1);
        assertEq(owner, A, "old owner");
        assertTrue(id == DS_A, "old id");
        assertEq(uint256(budget), 1_000_000, "old budget");
        assertEq(uint256(spent), 300_000, "old spend stays on record");
        assertFalse(current, "old not current");
        (owner, id, budget, spent, current) = app.datasetVersion(M_A2);
        assertEq(owner, A, "new owner");
        assertTrue(id == DS_A, "new id");
        assertEq(uint256(budget), 500_000, "new budget");
        assertEq(uint256(spent), 0, "new version starts unspent");
        assertTrue(current, "new current");
        assertEq(app.currentManifest(DS_A), M_A2, "current is the new one");
        assertEq(app.datasetVersionCount(), 3, "three versions");

        _charge(_req(500_000, _m1(M_A2), bytes32(uint256(2))));
        assertEq(uint256(_spent(M_A2)), 500_000, "new version charged");
    }

    function testSupersedeRefusals() public {
        _registerBoth(0, 0);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.NotDatasetOwner.selector, DS_A, B));
        vm.prank(B); // an owner, but not the dataset's
        app.supersedeDataset(DS_A, M_A2, 0);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.NotDatasetOwner.selector, DS_A, OUTSIDER));
        vm.prank(OUTSIDER);
        app.supersedeDataset(DS_A, M_A2, 0);
        bytes16 unknown = bytes16(keccak256("nobody"));
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.UnknownDataset.selector, unknown));
        vm.prank(A);
        app.supersedeDataset(unknown, M_A2, 0);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.ManifestExists.selector, M_B1));
        vm.prank(A);
        app.supersedeDataset(DS_A, M_B1, 0);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.ManifestExists.selector, M_A1));
        vm.prank(A);
        app.supersedeDataset(DS_A, M_A1, 0);
        assertEq(app.currentManifest(DS_A), M_A1, "unchanged");
    }

    // ---- charges ---------------------------------------------------------------------

    function testChargeRecordsAndEmits() public {
        _registerBoth(0, 800_000);
        vm.roll(1234);
        bytes32 nonce = keccak256("nonce 1");
        ConsortiumApp.ChargeRequest memory r = _req(250_000, _m2(M_A1, M_B1), nonce);
        ConsortiumApp.ChargeSig memory s = _sig(r);

        vm.expectEmit(true, true, true, true, address(app));
        emit ConsortiumApp.Charged(0, r.queryHash, nonce, 250_000, 1_000_000, r.manifestHashes);
        vm.expectEmit(true, true, true, true, address(app));
        emit ConsortiumApp.DatasetCharged(M_A1, 0, 250_000, 250_000);
        vm.expectEmit(true, true, true, true, address(app));
        emit ConsortiumApp.DatasetCharged(M_B1, 0, 250_000, 250_000);
        vm.prank(OUTSIDER);
        uint256 index = app.charge(r, s);
        assertEq(index, 0, "first index");

        assertEq(app.chargeCount(), 1, "one charge");
        (bytes32 q, uint64 eps, uint64 delta, bytes32 n, uint64 blk, bytes32[] memory m) = app.charges(0);
        assertEq(q, r.queryHash, "query hash");
        assertEq(uint256(eps), 250_000, "epsilon");
        assertEq(uint256(delta), 1_000_000, "delta");
        assertEq(n, nonce, "nonce");
        assertEq(uint256(blk), 1234, "block number");
        assertEq(m.length, 2, "manifests");
        assertEq(m[0], M_A1, "manifest 0");
        assertEq(m[1], M_B1, "manifest 1");
        assertTrue(app.nonceUsed(nonce), "nonce used");
        assertFalse(app.nonceUsed(keccak256("other")), "other nonce unused");
        (bool found, uint256 at) = app.chargeByNonce(nonce);
        assertTrue(found && at == 0, "charge by nonce");
        (found,) = app.chargeByNonce(keccak256("other"));
        assertFalse(found, "unknown nonce");
        assertEq(uint256(_spent(M_A1)), 250_000, "A spent");
        assertEq(uint256(_spent(M_B1)), 250_000, "B spent");

        vm.expectEmit(true, true, true, true, address(app));
        emit ConsortiumApp.DatasetCharged(M_B1, 1, 100_000, 350_000);
        index = _charge(_req(100_000, _m1(M_B1), keccak256("nonce 2")));
        assertEq(index, 1, "second index");
        assertEq(app.chargeCount(), 2, "two charges");
    }

    function testChargeAcceptsRecoveryIdZeroOne() public {
        _registerBoth(0, 0);
        ConsortiumApp.ChargeRequest memory r = _req(1, _m1(M_A1), bytes32(uint256(1)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        // dstack writes v as the recovery id 0/1
        s.signature[64] = bytes1(uint8(s.signature[64]) - 27);
        s.chain0[64] = bytes1(uint8(s.chain0[64]) - 27);
        s.chain1[64] = bytes1(uint8(s.chain1[64]) - 27);
        app.charge(r, s);
        assertEq(uint256(_spent(M_A1)), 1, "charged");
    }

    function testChargePastBudget() public {
        _registerBoth(500_000, 0);
        _charge(_req(300_000, _m1(M_A1), bytes32(uint256(1))));
        ConsortiumApp.ChargeRequest memory r = _req(200_001, _m1(M_A1), bytes32(uint256(2)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.BudgetExceeded.selector, M_A1, 300_000, 200_001, 500_000));
        app.charge(r, s);
        _charge(_req(200_000, _m1(M_A1), bytes32(uint256(3)))); // exactly to the budget
        assertEq(uint256(_spent(M_A1)), 500_000, "spent to the budget");
        r = _req(1, _m1(M_A1), bytes32(uint256(4)));
        s = _sig(r);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.BudgetExceeded.selector, M_A1, 500_000, 1, 500_000));
        app.charge(r, s);
    }

    function testHugeEpsilonDoesNotOverflow() public {
        _registerBoth(type(uint64).max, 0);
        _charge(_req(10, _m1(M_A1), bytes32(uint256(1))));
        ConsortiumApp.ChargeRequest memory r = _req(type(uint64).max, _m1(M_A1), bytes32(uint256(2)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        vm.expectRevert(
            abi.encodeWithSelector(ConsortiumApp.BudgetExceeded.selector, M_A1, 10, type(uint64).max, type(uint64).max)
        );
        app.charge(r, s);
    }

    function testSpentDatasetBlocksOnlyQueriesReadingIt() public {
        _registerBoth(200_000, 1_000_000);
        _charge(_req(200_000, _m1(M_A1), bytes32(uint256(1)))); // A's dataset is spent
        ConsortiumApp.ChargeRequest memory r = _req(100_000, _m2(M_B1, M_A1), bytes32(uint256(2)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.BudgetExceeded.selector, M_A1, 200_000, 100_000, 200_000));
        app.charge(r, s);
        assertEq(uint256(_spent(M_B1)), 0, "all or nothing: B not charged by the refused query");
        _charge(_req(100_000, _m1(M_B1), bytes32(uint256(3)))); // a query reading only B still runs
        assertEq(uint256(_spent(M_B1)), 100_000, "B charged");
        assertEq(uint256(_spent(M_A1)), 200_000, "A unchanged");
    }

    function testForgedChargeSignature() public {
        _registerBoth(0, 0);
        ConsortiumApp.ChargeRequest memory r = _req(100_000, _m1(M_A1), bytes32(uint256(1)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        s.signature = _sign(OTHER_SK, app.chargeDigest(r)); // another key
        vm.expectRevert(ConsortiumApp.BadChargeSignature.selector);
        app.charge(r, s);

        s = _sig(r);
        r.epsilonMicro = 1; // the relayer lowers the charge
        vm.expectRevert(ConsortiumApp.BadChargeSignature.selector);
        app.charge(r, s);

        r.epsilonMicro = 100_000;
        s.derivedPubkey = _pub(OTHER_SK); // signature stands, key swapped
        vm.expectRevert(ConsortiumApp.BadChargeSignature.selector);
        app.charge(r, s);

        s = _sig(r);
        s.signature[64] = bytes1(uint8(29)); // v out of range
        vm.expectRevert(ConsortiumApp.BadChargeSignature.selector);
        app.charge(r, s);

        s = _sig(r);
        s.signature[5] = bytes1(uint8(s.signature[5]) ^ 1); // r altered
        vm.expectRevert(ConsortiumApp.BadChargeSignature.selector);
        app.charge(r, s);
    }

    function testForgedAppSignature() public {
        _registerBoth(0, 0);
        ConsortiumApp.ChargeRequest memory r = _req(100_000, _m1(M_A1), bytes32(uint256(1)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        s.chain0 = _chain0(OTHER_SK, "dstack-ledger/v1", DERIVED_SK); // not the app key
        vm.expectRevert(ConsortiumApp.BadAppSignature.selector);
        app.charge(r, s);

        s.chain0 = _chain0(APP_SK, "dstack-seal/v1/70997970c51812dc3a010c7d01b50e0d17dc79c8", DERIVED_SK);
        vm.expectRevert(ConsortiumApp.BadAppSignature.selector); // a key for another purpose
        app.charge(r, s);

        // upper-case hex is another message: the layout is exact
        bytes memory up = _hex(_compressed(DERIVED_SK));
        for (uint256 i = 0; i < up.length; i++) {
            if (up[i] >= "a" && up[i] <= "f") up[i] = bytes1(uint8(up[i]) - 32);
        }
        s.chain0 = _sign(APP_SK, keccak256(abi.encodePacked("dstack-ledger/v1:", up)));
        vm.expectRevert(ConsortiumApp.BadAppSignature.selector);
        app.charge(r, s);

        s = _sig(r);
        s.appPubkey = _pub(OTHER_SK); // chain0 stands, key swapped
        vm.expectRevert(ConsortiumApp.BadAppSignature.selector);
        app.charge(r, s);
    }

    function testForgedKmsSignature() public {
        _registerBoth(0, 0);
        ConsortiumApp.ChargeRequest memory r = _req(100_000, _m1(M_A1), bytes32(uint256(1)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        s.chain1 = _chain1(OTHER_SK, address(app), APP_SK); // another KMS
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.BadKmsSignature.selector, vm.addr(OTHER_SK)));
        app.charge(r, s);

        // a whole chain from another KMS, consistent in itself
        s.chain0 = _chain0(OTHER_SK, "dstack-ledger/v1", DERIVED_SK);
        s.appPubkey = _pub(OTHER_SK);
        s.chain1 = _chain1(OTHER_SK, address(app), OTHER_SK);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.BadKmsSignature.selector, vm.addr(OTHER_SK)));
        app.charge(r, s);
    }

    function testChainForAnotherAppId() public {
        _registerBoth(0, 0);
        ConsortiumApp.ChargeRequest memory r = _req(100_000, _m1(M_A1), bytes32(uint256(1)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        s.chain1 = _chain1(KMS_SK, address(0xDEAD), APP_SK); // the right KMS, issued to another app
        bytes32 d = keccak256(abi.encodePacked("dstack-kms-issued:", address(app), _compressed(APP_SK)));
        (uint8 v, bytes32 rr, bytes32 ss) =
            vm.sign(KMS_SK, keccak256(abi.encodePacked("dstack-kms-issued:", address(0xDEAD), _compressed(APP_SK))));
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.BadKmsSignature.selector, ecrecover(d, v, rr, ss)));
        app.charge(r, s);
    }

    function testMalformedChargeSig() public {
        _registerBoth(0, 0);
        ConsortiumApp.ChargeRequest memory r = _req(100_000, _m1(M_A1), bytes32(uint256(1)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        s.derivedPubkey = _compressed(DERIVED_SK); // 33 bytes, not x || y
        vm.expectRevert(ConsortiumApp.MalformedChargeSig.selector);
        app.charge(r, s);
        s = _sig(r);
        s.chain1 = new bytes(64);
        vm.expectRevert(ConsortiumApp.MalformedChargeSig.selector);
        app.charge(r, s);
        s = _sig(r);
        s.signature = new bytes(0);
        vm.expectRevert(ConsortiumApp.MalformedChargeSig.selector);
        app.charge(r, s);
    }

    function testReplayedNonce() public {
        _registerBoth(0, 0);
        ConsortiumApp.ChargeRequest memory r = _req(100_000, _m1(M_A1), bytes32(uint256(42)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        app.charge(r, s);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.NonceUsed.selector, bytes32(uint256(42))));
        app.charge(r, s);
        // the same nonce for another query, freshly signed, is refused too
        r = _req(5, _m1(M_B1), bytes32(uint256(42)));
        s = _sig(r);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.NonceUsed.selector, bytes32(uint256(42))));
        app.charge(r, s);
        assertEq(uint256(_spent(M_A1)), 100_000, "charged once");
        assertEq(app.chargeCount(), 1, "one charge");
    }

    function testSupersededDatasetCannotBeCharged() public {
        _registerBoth(0, 0);
        vm.prank(A);
        app.supersedeDataset(DS_A, M_A2, 0);
        ConsortiumApp.ChargeRequest memory r = _req(100_000, _m2(M_B1, M_A1), bytes32(uint256(1)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.ManifestSuperseded.selector, M_A1));
        app.charge(r, s);
        assertEq(uint256(_spent(M_B1)), 0, "nothing charged");
    }

    function testUnregisteredManifest() public {
        _registerBoth(0, 0);
        bytes32 unknown = keccak256("never registered");
        ConsortiumApp.ChargeRequest memory r = _req(100_000, _m2(M_A1, unknown), bytes32(uint256(1)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.UnknownManifest.selector, unknown));
        app.charge(r, s);
    }

    function testEmptyAndDuplicateManifests() public {
        _registerBoth(0, 0);
        ConsortiumApp.ChargeRequest memory r = _req(100_000, new bytes32[](0), bytes32(uint256(1)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        vm.expectRevert(ConsortiumApp.NoManifests.selector);
        app.charge(r, s);
        bytes32[] memory m = new bytes32[](3);
        m[0] = M_A1;
        m[1] = M_B1;
        m[2] = M_A1;
        r = _req(100_000, m, bytes32(uint256(2)));
        s = _sig(r);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.DuplicateManifest.selector, M_A1));
        app.charge(r, s);
    }

    function testRevokedConsortiumRefusesCharges() public {
        _registerBoth(0, 0);
        ConsortiumApp.ChargeRequest memory r = _req(100_000, _m1(M_A1), bytes32(uint256(1)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        vm.prank(C);
        app.revoke("withdrawn");
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.AlreadyRevoked.selector, C));
        app.charge(r, s);
    }

    function testUnapprovedConsortiumRefusesCharges() public {
        address[] memory o = new address[](3);
        o[0] = A;
        o[1] = B;
        o[2] = C;
        app = new ConsortiumApp(
            o,
            2,
            HASH,
            ConsortiumApp.Policy({epsilonMilli: 1500, minGroupSize: 10, outputType: "dp-aggregate", privacyUnit: "u"}),
            vm.addr(KMS_SK)
        );
        vm.prank(A);
        app.approve();
        _registerBoth(0, 0); // registering needs no approval
        ConsortiumApp.ChargeRequest memory r = _req(100_000, _m1(M_A1), bytes32(uint256(1)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.NotApproved.selector, 1, 2));
        app.charge(r, s);
        vm.prank(C);
        app.approve();
        app.charge(r, s);
        assertEq(uint256(_spent(M_A1)), 100_000, "charged once approved");
    }

    function testSignatureForAnotherChainRefused() public {
        _registerBoth(0, 0);
        ConsortiumApp.ChargeRequest memory r = _req(100_000, _m1(M_A1), bytes32(uint256(1)));
        ConsortiumApp.ChargeSig memory s = _sig(r);
        vm.chainId(1);
        vm.expectRevert(ConsortiumApp.BadChargeSignature.selector);
        app.charge(r, s);
    }

    function testUnknownCharge() public {
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.UnknownCharge.selector, 0));
        app.charges(0);
    }
}
