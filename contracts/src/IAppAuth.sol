// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.22;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

/**
 * @title IAppAuth
 * @notice The app-authorization interface that dstack's KMS calls before it releases
 *         an application's keys to a confidential VM.
 * @dev Matches, field for field and selector for selector, the interface of
 *      Dstack-TEE/dstack `kms/auth-eth/contracts/IAppAuth.sol` (implemented there by
 *      `DstackApp.sol`). The ERC-165 interface id is
 *      `type(IAppAuth).interfaceId == bytes4(keccak256(
 *        "isAppAllowed((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))"))
 *       == 0x1e079198`, which is what `DstackApp.supportsInterface` answers to.
 */
interface IAppAuth is IERC165 {
    /**
     * @notice What the KMS knows about a CVM that asks for its app keys.
     * @param appId        The app id the CVM claims (the address of its auth contract).
     * @param composeHash  sha256 of the CVM's `app-compose.json`, as measured at boot.
     * @param instanceId   The CVM instance's id.
     * @param deviceId     The id of the physical machine the CVM runs on.
     * @param mrAggregated The aggregated TDX measurement of the whole boot.
     * @param mrSystem     The measurement of the system (firmware, kernel, initrd) part.
     * @param osImageHash  The hash of the dstack OS image the CVM booted.
     * @param tcbStatus    The TCB status reported with the quote (e.g. "UpToDate").
     * @param advisoryIds  Intel security advisories that apply to the platform's TCB.
     */
    struct AppBootInfo {
        address appId;
        bytes32 composeHash;
        address instanceId;
        bytes32 deviceId;
        bytes32 mrAggregated;
        bytes32 mrSystem;
        bytes32 osImageHash;
        string tcbStatus;
        string[] advisoryIds;
    }

    /**
     * @notice Decide whether a CVM with this boot information may receive the app's keys.
     * @param bootInfo The booting CVM's identity and measurements.
     * @return isAllowed True when the KMS may release the keys.
     * @return reason    Empty when allowed; otherwise a human-readable reason for refusal.
     */
    function isAppAllowed(AppBootInfo calldata bootInfo)
        external
        view
        returns (bool isAllowed, string memory reason);
}
