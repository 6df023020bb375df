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

/**
 * The roster events local_caseload forwards to Caseload.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$observers = [];
foreach ([
    '\core\event\user_enrolment_created',
    '\core\event\user_enrolment_updated',
    '\core\event\user_enrolment_deleted',
    '\core\event\role_assigned',
    '\core\event\role_unassigned',
    '\core\event\user_updated',
    '\core\event\user_deleted',
    '\core\event\course_deleted',
    // Quizzes (accommodations applied in the LMS): a new quiz, a changed time limit, a restored or imported
    // course, and a teacher's edit of a student's override are seen in seconds, not at the nightly sweep.
    '\core\event\course_module_created',
    '\core\event\course_module_updated',
    '\core\event\course_restored',
    '\mod_quiz\event\user_override_created',
    '\mod_quiz\event\user_override_updated',
    '\mod_quiz\event\user_override_deleted',
] as $eventname) {
    $observers[] = [
        'eventname' => $eventname,
        'callback' => '\local_caseload\observer::handle',
        // Run after the database transaction commits: a rolled-back enrolment is never announced.
        'internal' => false,
    ];
}
