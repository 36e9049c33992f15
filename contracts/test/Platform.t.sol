// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.22;

import {Test} from "./utils/Test.sol";
import {ConsortiumApp} from "../src/ConsortiumApp.sol";
import {IAppAuth} from "../src/IAppAuth.sol";

/// Platform pins (TCB status, OS images, devices), changed by k-of-n proposals.
contract PlatformTest is Test {
    bytes32 constant HASH = keccak256("app-compose.json");
    address constant A = address(0xA11CE);
    address constant B = address(0xB0B);
    address constant C = address(0xC0C);
    address constant OUTSIDER = address(0xBAD);
    bytes32 constant IMG1 = keccak256("os image 1");
    bytes32 constant IMG2 = keccak256("os image 2");
    bytes32 constant DEV1 = keccak256("device 1");
    bytes32 constant DEV2 = keccak256("device 2");

    ConsortiumApp app;

    function _deploy(uint256 k) internal returns (ConsortiumApp a) {
        address[] memory o = new address[](3);
        o[0] = A;
        o[1] = B;
        o[2] = C;
        a = new ConsortiumApp(
            o,
            k,
            HASH,
            ConsortiumApp.Policy({epsilonMilli: 1500, minGroupSize: 10, outputType: "dp-aggregate", privacyUnit: "u"}),
            address(0x4B5)
        );
        vm.prank(A);
        a.approve();
        if (k > 1) {
            vm.prank(B);
            a.approve();
        }
    }

    function setUp() public {
        app = _deploy(2);
    }

    function _allowed(string memory tcb, bytes32 img, bytes32 dev) internal view returns (bool, string memory) {
        IAppAuth.AppBootInfo memory b;
        b.appId = address(app);
        b.composeHash = HASH;
        b.instanceId = address(0x1234);
        b.deviceId = dev;
        b.osImageHash = img;
        b.tcbStatus = tcb;
        b.advisoryIds = new string[](0);
        return app.isAppAllowed(b);
    }

    function _list(bytes32 x) internal pure returns (bytes32[] memory l) {
        l = new bytes32[](1);
        l[0] = x;
    }

    function _list2(bytes32 x, bytes32 y) internal pure returns (bytes32[] memory l) {
        l = new bytes32[](2);
        l[0] = x;
        l[1] = y;
    }

    function testNoPinsByDefault() public {
        (bool ok, string memory why) = _allowed("OutOfDate", IMG2, DEV2);
        assertTrue(ok, why);
        (bool tcb, bytes32[] memory imgs, bytes32[] memory devs, uint256 gen) = app.platform();
        assertFalse(tcb, "no TCB requirement");
        assertEq(imgs.length + devs.length + gen, 0, "nothing pinned, generation 0");
        assertEq(app.platformProposalCount(), 0, "no proposals");
    }

    function testProposalTakesEffectAtThreshold() public {
        vm.expectEmit(true, true, true, true, address(app));
        emit ConsortiumApp.PlatformProposed(0, A, true, _list(IMG1), _list(DEV1));
        vm.expectEmit(true, true, true, true, address(app));
        emit ConsortiumApp.PlatformApproved(0, A, 1);
        vm.prank(A);
        uint256 id = app.proposePlatform(true, _list(IMG1), _list(DEV1));
        assertEq(id, 0, "first id");
        (bool ok,) = _allowed("OutOfDate", IMG2, DEV2);
        assertTrue(ok, "1 of 2: not yet in force");
        assertTrue(app.hasApprovedPlatform(0, A), "proposer approved");
        (,,, uint256 base, uint256 approvals) = app.platformProposal(0);
        assertEq(base, 0, "made against generation 0");
        assertEq(approvals, 1, "one approval");

        vm.expectEmit(true, true, true, true, address(app));
        emit ConsortiumApp.PlatformApproved(0, C, 2);
        vm.expectEmit(true, true, true, true, address(app));
        emit ConsortiumApp.PlatformChanged(0, 1, true, _list(IMG1), _list(DEV1));
        vm.prank(C);
        app.approvePlatform(0);

        (bool tcb, bytes32[] memory imgs, bytes32[] memory devs, uint256 gen) = app.platform();
        assertTrue(tcb, "TCB required");
        assertEq(imgs.length, 1, "one image");
        assertEq(imgs[0], IMG1, "image");
        assertEq(devs.length, 1, "one device");
        assertEq(devs[0], DEV1, "device");
        assertEq(gen, 1, "generation 1");

        string memory why;
        (ok, why) = _allowed("UpToDate", IMG1, DEV1);
        assertTrue(ok, why);
        (ok, why) = _allowed("OutOfDate", IMG1, DEV1);
        assertFalse(ok, "out of date TCB");
        assertEq(why, "TCB status is not up to date");
        (ok, why) = _allowed("UpToDate", IMG2, DEV1);
        assertFalse(ok, "other image");
        assertEq(why, "OS image not allowed");
        (ok, why) = _allowed("UpToDate", IMG1, DEV2);
        assertFalse(ok, "other device");
        assertEq(why, "device not allowed");
    }

    function testReplacingPinsClearsTheOldOnes() public {
        vm.prank(A);
        app.proposePlatform(false, _list(IMG1), _list2(DEV1, DEV2));
        vm.prank(B);
        app.approvePlatform(0);
        (bool ok,) = _allowed("OutOfDate", IMG1, DEV2);
        assertTrue(ok, "TCB not required, pinned image and device");

        vm.prank(B);
        app.proposePlatform(false, _list(IMG2), new bytes32[](0));
        vm.prank(C);
        app.approvePlatform(1);
        string memory why;
        (ok, why) = _allowed("UpToDate", IMG1, DEV1);
        assertFalse(ok, "old image unpinned");
        assertEq(why, "OS image not allowed");
        (ok,) = _allowed("UpToDate", IMG2, keccak256("any device"));
        assertTrue(ok, "no device pin any more");
    }

    function testThresholdOneAppliesAtOnce() public {
        app = _deploy(1);
        vm.prank(C);
        app.proposePlatform(true, new bytes32[](0), new bytes32[](0));
        (bool ok, string memory why) = _allowed("OutOfDate", IMG1, DEV1);
        assertFalse(ok, "in force");
        assertEq(why, "TCB status is not up to date");
    }

    function testStaleProposalRefused() public {
        vm.prank(A);
        app.proposePlatform(true, new bytes32[](0), new bytes32[](0));
        vm.prank(B);
        app.proposePlatform(false, _list(IMG1), new bytes32[](0));
        vm.prank(A);
        app.approvePlatform(1); // proposal 1 takes effect
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.StalePlatformProposal.selector, 0, 0, 1));
        vm.prank(C);
        app.approvePlatform(0);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.StalePlatformProposal.selector, 1, 0, 1));
        vm.prank(C);
        app.approvePlatform(1); // applied already
        (bool tcb,,,) = app.platform();
        assertFalse(tcb, "proposal 0 never applied");
    }

    function testPlatformRefusals() public {
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.NotOwner.selector, OUTSIDER));
        vm.prank(OUTSIDER);
        app.proposePlatform(true, new bytes32[](0), new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.UnknownPlatformProposal.selector, 0));
        vm.prank(A);
        app.approvePlatform(0);
        vm.prank(A);
        app.proposePlatform(true, new bytes32[](0), new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.PlatformAlreadyApproved.selector, 0, A));
        vm.prank(A);
        app.approvePlatform(0);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.NotOwner.selector, OUTSIDER));
        vm.prank(OUTSIDER);
        app.approvePlatform(0);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.BadPin.selector, IMG1));
        vm.prank(A);
        app.proposePlatform(true, _list2(IMG1, IMG1), new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.BadPin.selector, bytes32(0)));
        vm.prank(A);
        app.proposePlatform(true, new bytes32[](0), _list(bytes32(0)));
        bytes32[] memory many = new bytes32[](33);
        for (uint256 i = 0; i < many.length; i++) {
            many[i] = bytes32(i + 1);
        }
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.TooManyPins.selector, 33));
        vm.prank(A);
        app.proposePlatform(true, many, new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.UnknownPlatformProposal.selector, 5));
        app.platformProposal(5);
    }

    function testNoPlatformChangeAfterRevoke() public {
        vm.prank(A);
        app.proposePlatform(true, new bytes32[](0), new bytes32[](0));
        vm.prank(C);
        app.revoke("stop");
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.AlreadyRevoked.selector, C));
        vm.prank(B);
        app.approvePlatform(0);
        vm.expectRevert(abi.encodeWithSelector(ConsortiumApp.AlreadyRevoked.selector, C));
        vm.prank(B);
        app.proposePlatform(true, new bytes32[](0), new bytes32[](0));
    }

    function testRevocationAndApprovalsAreReportedBeforePins() public {
        app = _deploy(3); // 2 of 3 approvals
        vm.prank(A);
        app.proposePlatform(true, new bytes32[](0), new bytes32[](0));
        vm.prank(B);
        app.approvePlatform(0);
        vm.prank(C);
        app.approvePlatform(0); // in force, recipe still at 2 of 3
        (bool ok, string memory why) = _allowed("OutOfDate", IMG1, DEV1);
        assertFalse(ok, "under-approved");
        assertEq(why, "only 2 of 3 required owner approvals");
    }
}
