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

use local_caseload\client;
use local_caseload\delivery;
use local_caseload\status;

/**
 * Posts one event to Caseload, signed with HMAC-SHA256 over "timestamp.body".
 *
 * Only a 2xx answer (202 accepted / duplicate / ignored) ends the task. Anything else - no answer, a 5xx, and
 * also a refusal (a rotated secret, a disabled platform, a wrong URL: every change made meanwhile must still
 * reach Caseload once the setting is fixed) - records the failing state for the administrator (settings page,
 * admin notifications, System status) and throws, so Moodle's task runner retries the task with a growing delay.
 * The event keeps its event_uid, so Caseload applies it once however often it arrives. The task never runs out
 * of attempts (Moodle gives up on an ad-hoc task after 12 failures) and waits at most an hour between attempts.
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
     * Deliver the event, or fail so that it is delivered later.
     *
     * @return void
     */
    public function execute() {
        $endpoint = (string)get_config('local_caseload', 'endpoint');
        $secret = (string)get_config('local_caseload', 'secret');
        if ($endpoint === '' || $secret === '') {
            $this->retry_later(get_string('notconfigured', 'local_caseload'));
        }
        $body = json_encode($this->get_custom_data(), JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
        [$code, $response, $error] = client::post($endpoint, $secret, $body,
            (int)get_config('local_caseload', 'timeout'));
        if (delivery::accepted($code)) {
            status::record_success();
            return;
        }
        $this->retry_later(delivery::reason($code, $response, $error));
    }

    /**
     * Record why, keep the task alive and throw: Moodle reschedules it.
     *
     * @param string $reason
     * @return void
     * @throws \moodle_exception always
     */
    private function retry_later(string $reason): void {
        status::record_failure($reason);
        mtrace('local_caseload: the event stays queued and is sent again later. ' . $reason);
        $this->set_attempts_available(delivery::ATTEMPTS);
        $this->set_fail_delay(delivery::fail_delay((int)$this->get_fail_delay()));
        throw new \moodle_exception('error', 'local_caseload', '', null, $reason);
    }
}
