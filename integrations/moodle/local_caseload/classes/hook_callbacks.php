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
 * Hook callbacks: a failing delivery is shown on Moodle's admin notifications page and on the plugin's settings.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class hook_callbacks {

    /** @var string[] Pages that show the failing state: Site administration > Notifications, the plugin's settings. */
    const PAGES = ['admin-index', 'admin-setting-local_caseload'];

    /**
     * Add the failing-delivery notice to the top of the admin notifications page (site administrators only).
     *
     * @param \core\hook\output\before_standard_top_of_body_html_generation $hook
     * @return void
     */
    public static function before_standard_top_of_body_html_generation(
            \core\hook\output\before_standard_top_of_body_html_generation $hook): void {
        global $PAGE;
        if (during_initial_install() || !isloggedin() || !is_siteadmin()) {
            return;
        }
        if ($PAGE->pagetype !== 'admin-index') {
            return; // The settings page shows the state itself.
        }
        $message = status::failing_message();
        if ($message === '') {
            return;
        }
        $link = \html_writer::link(new \moodle_url('/admin/settings.php', ['section' => 'local_caseload']),
            get_string('pluginname', 'local_caseload'));
        $hook->add_html($hook->renderer->notification(s($message) . ' ' . $link, 'error'));
    }
}
