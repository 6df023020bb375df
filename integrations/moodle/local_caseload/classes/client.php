<?php
// This file is part of local_caseload, the Caseload companion plugin for Moodle.
//
// local_caseload is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// local_caseload is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <http://www.gnu.org/licenses/>.

namespace local_caseload;

/**
 * Posts signed requests to Caseload through Moodle's curl wrapper (which applies the cURL blocked hosts list).
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class client {

    /**
     * POST a body signed with HMAC-SHA256 over "timestamp.body".
     *
     * @param string $url The Caseload webhook URL of this site
     * @param string $secret The webhook secret
     * @param string $body JSON
     * @param int $timeout Seconds
     * @return array [HTTP status (0: no answer), answer body, transport error]
     */
    public static function post(string $url, string $secret, string $body, int $timeout): array {
        global $CFG;
        require_once($CFG->libdir . '/filelib.php');
        $timestamp = (string)time();
        $curl = new \curl();
        $curl->setHeader([
            'Content-Type: application/json',
            'X-Caseload-Timestamp: ' . $timestamp,
            'X-Caseload-Signature: ' . delivery::signature($secret, $timestamp, $body),
        ]);
        $timeout = max(1, $timeout);
        $response = $curl->post($url, $body, ['CURLOPT_TIMEOUT' => $timeout, 'CURLOPT_CONNECTTIMEOUT' => $timeout]);
        $info = $curl->get_info();
        $code = isset($info['http_code']) ? (int)$info['http_code'] : 0;
        $error = $curl->get_errno() ? (string)$curl->error : '';
        return [$code, (string)$response, $error];
    }
}
