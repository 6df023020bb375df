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
 * Admin settings: where to send events and the shared secret that signs them.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

if ($hassiteconfig) {
    $settings = new admin_settingpage('local_caseload', get_string('pluginname', 'local_caseload'));
    $ADMIN->add('localplugins', $settings);

    $settings->add(new admin_setting_configcheckbox('local_caseload/enabled',
        get_string('enabled', 'local_caseload'), get_string('enabled_desc', 'local_caseload'), 0));
    $settings->add(new admin_setting_configtext('local_caseload/endpoint',
        get_string('endpoint', 'local_caseload'), get_string('endpoint_desc', 'local_caseload'), '', PARAM_URL, 80));
    $settings->add(new admin_setting_configpasswordunmask('local_caseload/secret',
        get_string('secret', 'local_caseload'), get_string('secret_desc', 'local_caseload'), ''));
    $settings->add(new admin_setting_configtext('local_caseload/timeout',
        get_string('timeout', 'local_caseload'), get_string('timeout_desc', 'local_caseload'), 10, PARAM_INT));
}
