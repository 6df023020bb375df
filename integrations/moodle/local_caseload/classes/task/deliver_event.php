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

namespace local_caseload\task;

/**
 * Posts one event to Caseload, signed with HMAC-SHA256 over "timestamp.body".
 *
 * A 2xx answer (202 accepted / duplicate / ignored) ends the task. A 4xx other than 408, 409, 425 and 429 means
 * Caseload refused the event for good (a wrong secret, a malformed event): the reason is printed in the task log
 * and the event is dropped, since sending it again cannot succeed. Anything else (no answer, 5xx, 503 while
 * Caseload's database is down) throws, and Moodle retries the task later with a growing delay.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class deliver_event extends \core\task\adhoc_task {

    /**
     * Task name shown in the admin pages.
     *
     * @return string
     */
    public function get_name(): string {
        return get_string('taskdeliver', 'local_caseload');
    }

    /**
     * Deliver the event.
     *
     * @return void
     */
    public function execute() {
        global $CFG;
        require_once($CFG->libdir . '/filelib.php');
        $endpoint = (string)get_config('local_caseload', 'endpoint');
        $secret = (string)get_config('local_caseload', 'secret');
        if ($endpoint === '' || $secret === '') {
            mtrace('local_caseload: no endpoint or secret configured; event not sent.');
            return;
        }
        $body = json_encode($this->get_custom_data(), JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
        $timestamp = (string)time();
        $signature = hash_hmac('sha256', $timestamp . '.' . $body, $secret);
        $timeout = max(1, (int)get_config('local_caseload', 'timeout'));

        $curl = new \curl();
        $curl->setHeader([
            'Content-Type: application/json',
            'X-Caseload-Timestamp: ' . $timestamp,
            'X-Caseload-Signature: sha256=' . $signature,
        ]);
        $response = $curl->post($endpoint, $body, ['CURLOPT_TIMEOUT' => $timeout, 'CURLOPT_CONNECTTIMEOUT' => $timeout]);
        $info = $curl->get_info();
        $code = isset($info['http_code']) ? (int)$info['http_code'] : 0;
        if ($code >= 200 && $code < 300) {
            return;
        }
        if ($code >= 400 && $code < 500 && !in_array($code, [408, 409, 425, 429], true)) {
            mtrace('local_caseload: Caseload refused the event (HTTP ' . $code . '): ' . substr((string)$response, 0, 500));
            return;
        }
        $error = $curl->get_errno() ? $curl->error : ('HTTP ' . $code);
        throw new \moodle_exception('error', 'local_caseload', '', null, 'Caseload did not accept the event: ' . $error);
    }
}
