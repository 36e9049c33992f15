// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.22;

/// @notice The few forge cheatcodes these tests use (forge-std is not available offline).
interface Vm {
    struct Wallet {
        address addr;
        uint256 publicKeyX;
        uint256 publicKeyY;
        uint256 privateKey;
    }

    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function expectRevert(bytes calldata revertData) external;
    function expectRevert(bytes4 revertData) external;
    function expectRevert() external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData) external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter)
        external;
    function addr(uint256 privateKey) external pure returns (address);
    function toString(address value) external pure returns (string memory);
    function toString(uint256 value) external pure returns (string memory);
    function toString(bytes32 value) external pure returns (string memory);
    function toString(bytes calldata value) external pure returns (string memory);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function createWallet(uint256 privateKey) external returns (Wallet memory);
    function chainId(uint256 newChainId) external;
    function roll(uint256 newHeight) external;
}

/**
 * @title Test
 * @notice A tiny stand-in for forge-std's Test: forge runs `test*` functions of any
 *         contract whose `IS_TEST()` returns true, and a test fails when it reverts.
 *         Assertions therefore revert with a message naming both values.
 */
abstract contract Test {
    bool public constant IS_TEST = true;

    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function fail(string memory why) internal pure {
        revert(string.concat("assertion failed: ", why));
    }

    function assertTrue(bool c, string memory why) internal pure {
        if (!c) fail(why);
    }

    function assertTrue(bool c) internal pure {
        assertTrue(c, "expected true");
    }

    function assertFalse(bool c, string memory why) internal pure {
        if (c) fail(why);
    }

    function assertFalse(bool c) internal pure {
        assertFalse(c, "expected false");
    }

    function assertEq(uint256 a, uint256 b, string memory why) internal pure {
        if (a != b) fail(string.concat(why, ": ", vm.toString(a), " != ", vm.toString(b)));
    }

    function assertEq(uint256 a, uint256 b) internal pure {
        assertEq(a, b, "uint mismatch");
    }

    function assertEq(address a, address b, string memory why) internal pure {
        if (a != b) fail(string.concat(why, ": ", vm.toString(a), " != ", vm.toString(b)));
    }

    function assertEq(address a, address b) internal pure {
        assertEq(a, b, "address mismatch");
    }

    function assertEq(bytes32 a, bytes32 b, string memory why) internal pure {
        if (a != b) fail(string.concat(why, ": ", vm.toString(a), " != ", vm.toString(b)));
    }

    function assertEq(bytes32 a, bytes32 b) internal pure {
        assertEq(a, b, "bytes32 mismatch");
    }

    function assertEq(bool a, bool b, string memory why) internal pure {
        if (a != b) fail(why);
    }

    function assertEq(bool a, bool b) internal pure {
        assertEq(a, b, "bool mismatch");
    }

    function assertEq(string memory a, string memory b, string memory why) internal pure {
        if (keccak256(bytes(a)) != keccak256(bytes(b))) fail(string.concat(why, ": \"", a, "\" != \"", b, "\""));
    }

    function assertEq(string memory a, string memory b) internal pure {
        assertEq(a, b, "string mismatch");
    }
}
