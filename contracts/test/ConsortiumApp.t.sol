// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.22;

import {Test} from "./utils/Test.sol";
import {ConsortiumApp} from "../src/ConsortiumApp.sol";
import {IAppAuth} from "../src/IAppAuth.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

contract ConsortiumAppTest is Test {
    bytes32 constant HASH = keccak256("app-compose.json");
    address constant A = address(0xA11CE);
    address constant B = address(0xB0B);
    address constant C = address(0xC0C);
    address constant OUTSIDER = address(0xBAD);
    address constant KMS = address(0x4B5);

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
    event Approved(address indexed owner, uint256 count);
    event Revoked(address indexed owner, string reason);

    function _owners3() internal pure returns (address[] memory o) {
        o = new address[](3);
        o[0] = A;
        o[1] = B;
        o[2] = C;
    }

    function _policy() internal pure returns (ConsortiumApp.Policy memory) {
        return ConsortiumApp.Policy({
            epsilonMilli: 1500, minGroupSize: 10, outputType: "dp-aggregate", privacyUnit: "patient_id"
        });
    }

    function _deploy(uint256 k) internal returns (ConsortiumApp) {
        return new ConsortiumApp(_owners3(), k, HASH, _policy(), KMS);
    }

    function _boot(address app, bytes32 h) internal pure returns (IAppAuth.AppBootInfo memory b) {
        b.appId = app;
        b.composeHash = h;
        b.instanceId = address(0x1234);
        b.tcbStatus = "UpToDate";
        b.advisoryIds = new string[](0);
    }

    function _allowed(ConsortiumApp app, bytes32 h) internal view returns (bool ok, string memory why) {
        return app.isAppAllowed(_boot(address(app), h));
    }

    // ---- construction ------------------------------------------------------------

    function testConstructorStoresEverything() public {
        ConsortiumApp app = _deploy(2);
        address[] memory o = app.owners();
        assertEq(o.length, 3, "owners length");
        assertEq(o[0], A);
        assertEq(o[1], B);
        assertEq(o[2], C);
        assertEq(app.threshold(), 2, "threshold");
        assertEq(app.composeHash(), HASH, "compose hash");
        assertEq(app.approvalCount(), 0, "no approvals yet");
        assertTrue(app.isOwner(A) && app.isOwner(B) && app.isOwner(C), "owners");
        assertFalse(app.isOwner(OUTSIDER), "outsider not owner");
        assertFalse(app.revoked(), "not revoked");
        assertEq(app.revokedBy(), address(0));
        assertEq(app.revokeReason(), "");
        assertFalse(app.isApproved(), "not approved");
        assertEq(app.approvers().length, 0, "no approvers");
        assertEq(app.kmsRootAddress(), KMS, "kms root");
    }

    function testPolicyViews() public {
        ConsortiumApp app = _deploy(2);
        (uint32 eps, uint32 minGroup, string memory outType, string memory unit) = app.policy();
        assertEq(uint256(eps), 1500, "epsilon");
        assertEq(uint256(minGroup), 10, "min group");
        assertEq(outType, "dp-aggregate");
        assertEq(unit, "patient_id");
    }

    function testConstructorEmitsCreated() public {
        vm.expectEmit(true, true, true, true);
        emit ConsortiumCreated(_owners3(), 2, HASH, 1500, 10, "dp-aggregate", "patient_id", KMS);
        _deploy(2);
    }

    function testConstructorRejectsZeroThreshold() public {
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.InvalidThreshold.selector, 0, 3));
        new ConsortiumApp(_owners3(), 0, HASH, _policy(), KMS);
    }

    function testConstructorRejectsThresholdAboveN() public {
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.InvalidThreshold.selector, 4, 3));
        new ConsortiumApp(_owners3(), 4, HASH, _policy(), KMS);
    }

    function testConstructorRejectsNoOwners() public {
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.InvalidThreshold.selector, 1, 0));
        new ConsortiumApp(new address[](0), 1, HASH, _policy(), KMS);
    }

    function testConstructorRejectsDuplicateOwner() public {
        address[] memory o = _owners3();
        o[2] = A;
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.DuplicateOwner.selector, A));
        new ConsortiumApp(o, 2, HASH, _policy(), KMS);
    }

    function testConstructorRejectsZeroOwner() public {
        address[] memory o = _owners3();
        o[1] = address(0);
        vm.expectRevert(ConsortiumApp.ZeroOwner.selector);
        new ConsortiumApp(o, 2, HASH, _policy(), KMS);
    }

    function testConstructorRejectsZeroKmsRoot() public {
        vm.expectRevert(ConsortiumApp.ZeroKmsRoot.selector);
        new ConsortiumApp(_owners3(), 2, HASH, _policy(), address(0));
    }

    function testConstructorRejectsZeroComposeHash() public {
        vm.expectRevert(ConsortiumApp.ZeroComposeHash.selector);
        new ConsortiumApp(_owners3(), 2, bytes32(0), _policy(), KMS);
    }

    // ---- approval ----------------------------------------------------------------

    function testApprovalPath() public {
        ConsortiumApp app = _deploy(2);
        vm.expectEmit(true, true, true, true, address(app));
        emit Approved(B, 1);
        vm.prank(B);
        app.approve();
        assertEq(app.approvalCount(), 1);
        assertTrue(app.hasApproved(B));
        assertFalse(app.hasApproved(A));
        assertFalse(app.isApproved(), "1 of 2");

        vm.expectEmit(true, true, true, true, address(app));
        emit Approved(A, 2);
        vm.prank(A);
        app.approve();
        assertTrue(app.isApproved(), "2 of 2");
        address[] memory ap = app.approvers();
        assertEq(ap.length, 2);
        assertEq(ap[0], B, "approval order");
        assertEq(ap[1], A, "approval order");

        (uint256 n, uint256 k, bool rv, bytes32 h) = app.state();
        assertEq(n, 2);
        assertEq(k, 2);
        assertFalse(rv);
        assertEq(h, HASH);
    }

    function testThresholdEqualsN() public {
        ConsortiumApp app = _deploy(3);
        vm.prank(A);
        app.approve();
        vm.prank(B);
        app.approve();
        (bool ok, string memory why) = _allowed(app, HASH);
        assertFalse(ok, "2 of 3 not enough");
        assertEq(why, "only 2 of 3 required owner approvals");
        vm.prank(C);
        app.approve();
        (ok, why) = _allowed(app, HASH);
        assertTrue(ok, "3 of 3");
        assertEq(why, "");
    }

    function testThresholdOne() public {
        ConsortiumApp app = _deploy(1);
        (bool ok, string memory why) = _allowed(app, HASH);
        assertFalse(ok);
        assertEq(why, "only 0 of 1 required owner approvals");
        vm.prank(C);
        app.approve();
        (ok,) = _allowed(app, HASH);
        assertTrue(ok, "1 of 1");
        assertTrue(app.isApproved());
    }

    function testDoubleApprovalRejected() public {
        ConsortiumApp app = _deploy(2);
        vm.prank(A);
        app.approve();
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.AlreadyApproved.selector, A));
        vm.prank(A);
        app.approve();
        assertEq(app.approvalCount(), 1, "count unchanged");
    }

    function testNonOwnerCannotApprove() public {
        ConsortiumApp app = _deploy(1);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.NotOwner.selector, OUTSIDER));
        vm.prank(OUTSIDER);
        app.approve();
        assertEq(app.approvalCount(), 0);
    }

    function testNonOwnerCannotRevoke() public {
        ConsortiumApp app = _deploy(1);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.NotOwner.selector, OUTSIDER));
        vm.prank(OUTSIDER);
        app.revoke("nope");
        assertFalse(app.revoked());
    }

    // ---- revocation --------------------------------------------------------------

    function testRevokeByEachOwner() public {
        address[] memory o = _owners3();
        for (uint256 i = 0; i < o.length; i++) {
            ConsortiumApp app = _deploy(2);
            vm.prank(A);
            app.approve();
            vm.prank(B);
            app.approve();
            (bool ok,) = _allowed(app, HASH);
            assertTrue(ok, "approved before revoke");

            vm.expectEmit(true, true, true, true, address(app));
            emit Revoked(o[i], "withdrawn");
            vm.prank(o[i]);
            app.revoke("withdrawn");

            assertTrue(app.revoked());
            assertEq(app.revokedBy(), o[i]);
            assertEq(app.revokeReason(), "withdrawn");
            assertFalse(app.isApproved(), "revoked is not approved");
            string memory why;
            (ok, why) = _allowed(app, HASH);
            assertFalse(ok, "revoked");
            assertEq(why, string.concat("revoked by owner ", vm.toString(o[i])), "reason");
        }
    }

    function testApproveAfterRevokeRejected() public {
        ConsortiumApp app = _deploy(2);
        vm.prank(A);
        app.revoke("stop");
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.AlreadyRevoked.selector, A));
        vm.prank(B);
        app.approve();
    }

    function testRevokeIsFinal() public {
        ConsortiumApp app = _deploy(2);
        vm.prank(A);
        app.revoke("first");
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.AlreadyRevoked.selector, A));
        vm.prank(B);
        app.revoke("second");
        assertEq(app.revokedBy(), A, "first revoker stands");
        assertEq(app.revokeReason(), "first");
    }

    // ---- isAppAllowed ------------------------------------------------------------

    function testIsAppAllowedWrongComposeHash() public {
        ConsortiumApp app = _deploy(1);
        vm.prank(A);
        app.approve();
        (bool ok, string memory why) = _allowed(app, keccak256("other recipe"));
        assertFalse(ok);
        assertEq(why, "compose hash not allowed");
    }

    function testIsAppAllowedWrongAppId() public {
        ConsortiumApp app = _deploy(1);
        vm.prank(A);
        app.approve();
        (bool ok, string memory why) = app.isAppAllowed(_boot(address(0xDEAD), HASH));
        assertFalse(ok);
        assertEq(why, "wrong app id");
    }

    function testIsAppAllowedBelowThreshold() public {
        ConsortiumApp app = _deploy(2);
        vm.prank(C);
        app.approve();
        (bool ok, string memory why) = _allowed(app, HASH);
        assertFalse(ok);
        assertEq(why, "only 1 of 2 required owner approvals");
    }

    function testIsAppAllowedAllowed() public {
        ConsortiumApp app = _deploy(2);
        vm.prank(A);
        app.approve();
        vm.prank(C);
        app.approve();
        (bool ok, string memory why) = _allowed(app, HASH);
        assertTrue(ok);
        assertEq(why, "");
    }

    // ---- ERC-165 -----------------------------------------------------------------

    function testInterfaceIdIsDstacks() public pure {
        assertEq(uint256(uint32(type(IAppAuth).interfaceId)), uint256(uint32(0x1e079198)), "IAppAuth id");
        bytes4 sel = bytes4(
            keccak256(
                "isAppAllowed((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))"
            )
        );
        assertEq(uint256(uint32(sel)), uint256(uint32(0x1e079198)), "selector");
        assertEq(
            uint256(uint32(IAppAuth.isAppAllowed.selector)), uint256(uint32(0x1e079198)), "isAppAllowed selector"
        );
    }

    function testSupportsInterface() public {
        ConsortiumApp app = _deploy(2);
        assertTrue(app.supportsInterface(0x1e079198), "IAppAuth");
        assertTrue(app.supportsInterface(type(IERC165).interfaceId), "IERC165");
        assertFalse(app.supportsInterface(0xffffffff), "0xffffffff");
        assertFalse(app.supportsInterface(0x12345678), "random");
    }
}
