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
 * Observes roster events and queues their delivery to Caseload.
 *
 * The observer runs after the event's transaction committed; it takes a snapshot of the user's enrolment and
 * roles in the course at that moment and queues an ad-hoc task that posts it. Delivery is retried by Moodle's
 * task runner when Caseload cannot be reached, and each event keeps its uid across retries, so Caseload stores
 * it once however often it arrives.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class observer {

    /**
     * Queue the delivery of one event.
     *
     * @param \core\event\base $event
     * @return void
     */
    public static function handle(\core\event\base $event): void {
        if (!get_config('local_caseload', 'enabled') || !get_config('local_caseload', 'endpoint')) {
            return;
        }
        try {
            $payload = payload::from_event($event);
        } catch (\Throwable $e) {
            debugging('local_caseload could not describe ' . $event->eventname . ': ' . $e->getMessage(),
                DEBUG_DEVELOPER);
            return;
        }
        if ($payload === null) {
            return;
        }
        $task = new task\deliver_event();
        $task->set_component('local_caseload');
        $task->set_custom_data($payload);
        \core\task\manager::queue_adhoc_task($task);
    }
}
