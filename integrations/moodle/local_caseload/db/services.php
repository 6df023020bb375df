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
 * The web service Caseload uses to apply accommodations to quizzes: exactly the core functions it needs (Moodle
 * 4.4+ has the quiz override functions), so the administrator creates one token for one service.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$services = [
    'Caseload accommodations' => [
        'functions' => [
            'core_webservice_get_site_info',
            'core_group_get_group_members',
            'mod_quiz_get_quizzes_by_courses',
            'mod_quiz_get_overrides',
            'mod_quiz_save_overrides',
            'mod_quiz_delete_overrides',
        ],
        'shortname' => 'local_caseload_accommodations',
        'restrictedusers' => 1,
        'enabled' => 1,
        'downloadfiles' => 0,
        'uploadfiles' => 0,
    ],
];
